-- The http module.
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

local function http_call(name, method, url, body, headers, options, first)
  -- first: the position of url in the caller's arguments (2 for http.request).
  local response = request("http_request", method, check_string(name, first, url),
    optional_string(name, first + 1, body), check_options(name, first + 2, headers),
    check_options(name, first + 3, options))
  return response
end

local http = {
  request = function(method, url, body, headers, options)
    local response = http_call("http.request", check_string("http.request", 1, method), url,
      body, headers, options, 2)
    return response
  end,
}
for _, method in ipairs({ "get", "post", "put", "delete", "head", "patch" }) do
  local name = "http." .. method
  http[method] = function(url, body, headers, options)
    local response = http_call(name, method:upper(), url, body, headers, options, 1)
    return response
  end
end
return http
