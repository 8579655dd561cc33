-- For /probe?module=scripted&target=URL: the target arrives as os.getenv("TARGET").
local result = ws.probe(os.getenv("TARGET"), "ping")
return {value = result.timings.total, status = "MetricOk"}
