"""Fills a running DeviceOps server through its API: an organization, N devices and, per device,
OPS operations in progress (batch POSTs). Prints the id of the first operation of each device's
set as 'FIRST_OP=<id> OP_COUNT=<n>' for the load scripts: device i's operation is FIRST_OP + i."""
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor

base, token, devices, per_device = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def call(method, path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)

call("POST", "/api/v1/organization/", {"name": "Bench"})

def device(i):
    call("POST", "/api/v1/inventory_device/", {
        "device_id": f"B-{i:05d}", "device_name": f"Network Switch - NS-{i:05d}", "serial_number": f"SNB-{i:05d}",
        "device_type": "network_switch", "organization": "Bench", "operational_status": "active",
        "location": "Warehouse A - Section 3", "configuration": {"firmware_version": "2.1.4", "alert_level": "low"}})

with ThreadPoolExecutor(16) as pool:
    list(pool.map(device, range(devices)))

first = None
for round in range(per_device):
    items = [{"device_id": f"B-{i:05d}", "operation_type": "maintenance", "status": "in_progress"} for i in range(devices)]
    for start in range(0, len(items), 5000):
        made = call("POST", "/api/v1/inventory_device_operation/", items[start:start + 5000])
        if first is None:
            first = made["results"][0]["id"]
print(f"FIRST_OP={first} OP_COUNT={devices}")
