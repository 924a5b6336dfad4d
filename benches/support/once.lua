-- Sends each request of a file once, spread over wrk's threads.
-- The file has one request a line: path, bearer key and JSON body, tab-separated.
-- Arguments: the file, the number of threads, and a directory where each thread
-- leaves a mark once its last answer is in (the bench then stops wrk with SIGINT,
-- since wrk itself waits out its whole -d). Prints one line the bench reads: requests
-- answered 2xx, the others, and the time from the first request to the last answer.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } once_timespec;
  int clock_gettime(int clock, once_timespec *at);
]]
local function now_us()
  local at = ffi.new("once_timespec")
  ffi.C.clock_gettime(1, at) -- CLOCK_MONOTONIC
  return tonumber(at.tv_sec) * 1e6 + tonumber(at.tv_nsec) / 1e3
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, count = args[1], tonumber(args[2])
  marks = args[3]
  queue = {}
  local i = 0
  for line in io.lines(file) do
    if i % count == id then
      local path, key, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      table.insert(queue, wrk.format("POST", path, {
        ["Authorization"] = "Bearer " .. key,
        ["Content-Type"] = "application/json",
      }, body))
    end
    i = i + 1
  end
  sent, answered, ok, failed, first, last = 0, 0, 0, 0, 0, 0
  -- wrk calls the first thread's request() once before it runs, to learn whether
  -- requests are pipelined, and sends nothing of it: that call gets a filler.
  checking = (id == 0)
  if #queue == 0 then
    finish()
  end
end

function finish()
  local mark = io.open(marks .. "/done." .. id, "w")
  mark:write("done")
  mark:close()
end

-- Past its share, a connection asks for /healthz until the last answer is in; those
-- answers (`{"status":"ok"}`) are not counted.
function request()
  if checking then
    checking = false
    return wrk.format("GET", "/healthz")
  end
  sent = sent + 1
  if sent <= #queue then
    if sent == 1 then
      first = now_us()
    end
    return queue[sent]
  end
  return wrk.format("GET", "/healthz")
end

function response(status, headers, body)
  if body == '{"status":"ok"}' then
    return
  end
  answered = answered + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    failed = failed + 1
  end
  if answered == #queue then
    last = now_us()
    finish()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local ok_all, failed_all, from, to = 0, 0, nil, 0
  for _, thread in ipairs(threads) do
    ok_all = ok_all + thread:get("ok")
    failed_all = failed_all + thread:get("failed")
    local f, l = thread:get("first"), thread:get("last")
    if f > 0 and (from == nil or f < from) then from = f end
    if l > to then to = l end
  end
  io.write(string.format("once: ok=%d failed=%d duration_us=%d p50_us=%d p99_us=%d\n",
    ok_all, failed_all, to - (from or to), latency:percentile(50), latency:percentile(99)))
end
