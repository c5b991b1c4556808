-- A page of 100 operations, filtered by status and ordered newest first.
local token = os.getenv("TOKEN")
request = function()
  return wrk.format("GET", "/api/v1/inventory_device_operation/?status=in_progress&operation_type=maintenance&ordering=-id&limit=100",
    { ["Authorization"] = "Bearer " .. token })
end
