-- wrk script: PUT /api/handles/<new handle> with a ~400-byte record, every request a handle never
-- used before (so every request is a durable create: 201), authenticated with an API key.
--
--   wrk -t2 -c16 -d10s --latency -s tools/bench/https_register.lua https://127.0.0.1:PORT -- KEY PREFIX
--
-- Handles are PREFIX/PUT-<run>-<thread>-<n>; <run> is the start time, so reruns on the same data
-- directory still create. Used by tools/bench/run (row 2: durable single-record registration).

local key, prefix, run -- thread_no is set per thread by setup() (a global of that thread)
local n = 0
local next_id = 0
local body = '{"values":[' ..
   '{"index":1,"type":"URL","data":{"format":"string","value":"https://trace.steel.example.cn/coil/bench"}},' ..
   '{"index":2000,"type":"heat_no","data":{"format":"string","value":"H24C512345"}},' ..
   '{"index":2001,"type":"grade","data":{"format":"string","value":"Q355B"}},' ..
   '{"index":2002,"type":"standard","data":{"format":"string","value":"GB/T 1591-2018"}},' ..
   '{"index":2003,"type":"dimensions","data":{"format":"string","value":"4.75x1500 mm, coil 24120 kg"}},' ..
   '{"index":2004,"type":"batch_no","data":{"format":"string","value":"B202407-01234-L2"}}]}'

function setup(thread)
   next_id = next_id + 1
   thread:set("thread_no", next_id)
end

function init(args)
   key, prefix = args[1], args[2]
   if key == nil or prefix == nil then
      error("usage: wrk ... -s https_register.lua URL -- API_KEY PREFIX")
   end
   run = tostring(os.time())
end

function request()
   n = n + 1
   local path = "/api/handles/" .. prefix .. "/PUT-" .. run .. "-" .. thread_no .. "-" .. n
   return wrk.format("PUT", path, {["Authorization"] = "Bearer " .. key,
                                   ["Content-Type"] = "application/json"}, body)
end
