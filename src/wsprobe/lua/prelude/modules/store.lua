-- The store module: put, get, delete, each also _global.
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

local store = {}
for _, scope in ipairs({ "", "_global" }) do
  local global = scope == "_global"
  store["put" .. scope] = function(key, value)
    request("store_put", check_string("store.put" .. scope, 1, key), value, global)
  end
  store["get" .. scope] = function(key)
    local value, stamp = request("store_get", check_string("store.get" .. scope, 1, key), global)
    return value, stamp
  end
  store["delete" .. scope] = function(key)
    request("store_delete", check_string("store.delete" .. scope, 1, key), global)
  end
end
return store
