-- The cache module.
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

return {
  put = function(key, value, ttl)
    request("cache_put", check_string("cache.put", 1, key), value, ttl)
  end,
  get = function(key)
    local value = request("cache_get", check_string("cache.get", 1, key))
    return value
  end,
  delete = function(key)
    request("cache_delete", check_string("cache.delete", 1, key))
  end,
  mark_pending = function(key)
    request("cache_mark_pending", check_string("cache.mark_pending", 1, key))
  end,
}
