-- The uuid module.
-- Built the first time a script reads the module (see sandbox.lua): this chunk runs
-- with the prelude's kit as its environment and returns the module's functions.

return {
  uuid4 = function()
    local id = unwrap(host.uuid4())
    return id
  end,
}
