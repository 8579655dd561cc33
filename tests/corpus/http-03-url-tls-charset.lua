-- http page: the automatic http:// prefix, verify = false, charset.
-- Adapted: the page's bare get(...) is http.get; the TLS server is local (its CA is
-- not trusted by this run, so only verify = false reaches it); the iso-8859-1 body
-- is served without a declared charset.
local HTTP, HTTPS = os.getenv("HTTP"), os.getenv("HTTPS")
local bare = HTTP:gsub("^http://", "")
local r1 = http.get(bare .. "/api/health")
local r2 = http.get(HTTP .. "/api/health")
print(r1.status == r2.status, r1.body == r2.body)

local ok, err = pcall(http.get, HTTPS .. "/api/health")
print(ok, (err:gsub("https://[^/]+", "https://…")))
local resultado = http.get(HTTPS .. "/api/health", nil, nil, {verify = false})
print(resultado.status, resultado.body)

print(http.get(HTTP .. "/charset/undeclared").body)
print(http.get(HTTP .. "/charset/undeclared", nil, nil, {charset = "iso-8859-1"}).body)
--[==[ expect exit 0
true	true
false	connect https://…/api/health: TLS certificate verify failed: unable to get local issuer certificate
200	healthy
caf� �
café ü
]==]
