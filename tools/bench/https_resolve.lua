-- wrk script: GET /api/handles/<handle> for a handle drawn at random (uniformly, with
-- replacement) from a list file, one handle per line. Used against idnode and against nginx
-- serving the same bodies as static files (tools/bench/https_vs_nginx.sh), so both see the same
-- request stream shape.
--
--   wrk -t2 -c64 -d20s --latency -s tools/bench/https_resolve.lua https://127.0.0.1:PORT -- HANDLES [close]
--
-- With a second argument `close`, every request carries `Connection: close`: the server closes
-- after its answer and wrk opens (and TLS-handshakes) a new connection for the next request.
--
-- Each wrk thread loads the list in init() (before the timed run starts) and seeds its own
-- generator, so threads do not replay the same sequence. Requests are built by concatenation
-- (cheaper than wrk.format per request: wrk shares the two cores with the server under test).
-- Handles are used verbatim in the path: the generated ones need no percent-encoding.

local handles = {}
local count = 0
local head = "GET /api/handles/"
local tail = nil
local next_id = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("thread_id", next_id)
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s https_resolve.lua URL -- HANDLES_FILE")
   end
   for line in io.lines(path) do
      if #line > 0 then
         count = count + 1
         handles[count] = line
      end
   end
   if count == 0 then
      error("no handles in " .. path)
   end
   local host = wrk.headers["Host"] or wrk.host
   if wrk.headers["Host"] == nil and wrk.port ~= nil then
      host = wrk.host .. ":" .. wrk.port
   end
   local connection = ""
   if args[2] == "close" then
      connection = "Connection: close\r\n"
   end
   tail = " HTTP/1.1\r\nHost: " .. host .. "\r\n" .. connection .. "\r\n"
   math.randomseed(os.time() * 1009 + (thread_id or 0) * 7919)
end

function request()
   return head .. handles[math.random(count)] .. tail
end
