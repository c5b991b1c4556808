-- The seed's PUT, spread over the benchmark's operations; the location changes on every
-- request so each one is a real, audited, durable change (a relocation entry and an event).
local first, count = tonumber(os.getenv("FIRST_OP") or "1"), tonumber(os.getenv("OP_COUNT") or "1000")
local token = os.getenv("TOKEN")
local counter = 0
local template = [[{"operation_type":"maintenance","operational_status":"maintenance","status":"completed","device_id":"%s","operator_id":"OP-456","description":"Routine maintenance check performed","started_at":"2024-01-15T10:00:00Z","completed_at":"2024-01-15T11:30:00Z","notes":"All systems functioning normally","location":"Building A - Floor %d","assigned_user":"john.doe@company.com","maintenance_notes":"Scheduled firmware update completed","configuration":{"network_profile":"production","monitoring_enabled":true,"alert_level":"standard"},"next_maintenance":"2024-04-15T09:00:00Z"}]]

function setup(thread)
  thread:set("offset", math.random(0, count - 1))
end

request = function()
  counter = counter + 1
  local index = (offset + counter) % count
  local body = string.format(template, string.format("B-%05d", index), counter)
  return wrk.format("PUT", "/api/v1/inventory_device_operation/" .. (first + index) .. "/", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end

response = function(status, headers, body)
  if status ~= 200 then
    errors_seen = (errors_seen or 0) + 1
    if errors_seen < 3 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
  end
end
