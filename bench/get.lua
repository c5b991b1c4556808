-- GET one operation, spread over the benchmark's operations.
local first, count = tonumber(os.getenv("FIRST_OP") or "1"), tonumber(os.getenv("OP_COUNT") or "1000")
local token = os.getenv("TOKEN")
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/v1/inventory_device_operation/" .. (first + counter % count) .. "/", { ["Authorization"] = "Bearer " .. token })
end
