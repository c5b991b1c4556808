-- A filtered page of the device list, as a dashboard asks for it.
local token = os.getenv("TOKEN")
request = function()
  return wrk.format("GET", "/api/v1/inventory_device/?organization=Bench&operational_status=maintenance&device_type=network_switch&limit=50",
    { ["Authorization"] = "Bearer " .. token })
end
