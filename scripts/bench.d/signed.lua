-- wrk script for scripts/bench: POSTs one signed GitHub-style webhook per request, each with its
-- own delivery id (X-GitHub-Delivery, strangler's event id), so Kafka rows can check for loss.
-- The body is fixed, so one X-Hub-Signature-256 (HMAC-SHA256 of the body) is valid for all.
-- Arguments (after `--`): signature, run tag (makes ids unique across phases), body.
-- At the end prints one line: BENCH {"sent":N,"p50_us":..,"p99_us":..,"p999_us":..}.

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   sig, tag = args[1], args[2]
   wrk.method = "POST"
   wrk.body = args[3]
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["X-GitHub-Event"] = "order"
   wrk.headers["X-Hub-Signature-256"] = sig
   sent = 0
end

function request()
   sent = sent + 1
   wrk.headers["X-GitHub-Delivery"] = tag .. "-" .. tid .. "-" .. sent
   return wrk.format()
end

function done(summary, latency, requests)
   local total = 0
   for _, t in ipairs(threads) do
      total = total + t:get("sent")
   end
   -- wrk calls request() once more than it sends, to check the script's request.
   total = total - 1
   io.write(string.format(
      'BENCH {"sent":%d,"completed":%d,"errors":%d,"non2xx":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
      total, summary.requests,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      summary.errors.status, summary.duration,
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
