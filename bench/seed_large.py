"""Fills a migrated, idle SQLite store directly with SQL for the large benchmark: DEVICES devices in
one organization (a tenth of them in maintenance), one operation in progress per device, and
ENTRIES history entries spread over the devices. Direct SQL, because a million audited changes
through the API would take longer than the benchmark itself."""
import sqlite3, sys

path, devices, entries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
now = "2026-01-01 00:00:00"
db.execute("INSERT INTO organizations (name, created_at) VALUES ('Large', ?)", (now,))
org = db.execute("SELECT id FROM organizations WHERE name = 'Large'").fetchone()[0]
statuses = ["active"] * 9 + ["maintenance"]
db.executemany(
    "INSERT INTO devices (device_code, name, serial_number, device_type, organization_id, status, location, assigned_user,"
    " configuration, maintenance_notes, next_maintenance, created_at, last_updated, updated_by, deleted_at, version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '{\"firmware_version\":\"2.1.4\"}', NULL, ?, ?, ?, 'seed@localhost', NULL, 1)",
    ((f"L-{i:06d}", f"Switch {i}", f"SNL-{i:06d}", "network_switch" if i % 3 else "access_point", org,
      statuses[i % 10], f"Building {i % 50}", f"2026-{1 + i % 12:02d}-01 00:00:00", now, now) for i in range(devices)))
first_device = db.execute("SELECT min(id) FROM devices WHERE device_code LIKE 'L-%'").fetchone()[0]
db.executemany(
    "INSERT INTO operations (device_id, operation_type, status, operator_id, description, notes, started_at, completed_at,"
    " created_at, updated_at, created_by, version) VALUES (?, 'maintenance', 'in_progress', 'OP-1', NULL, NULL, ?, NULL, ?, ?, 'seed@localhost', 1)",
    ((first_device + i, now, now, now) for i in range(devices)))
first_operation = db.execute("SELECT min(id) FROM operations WHERE device_id = ?", (first_device,)).fetchone()[0]
db.executemany(
    "INSERT INTO history (timestamp, device_id, operation_id, action, from_status, to_status, changes, performed_by, request_id, justification)"
    " VALUES (?, ?, NULL, 'relocation', NULL, NULL, ?, 'seed@localhost', ?, NULL)",
    ((now, first_device + i % devices, '{"location":{"from":"A","to":"B"}}', f"seed-{i // 1000}") for i in range(entries)))
db.commit()
db.execute("ANALYZE")
db.close()
print(f"FIRST_OP={first_operation}")
