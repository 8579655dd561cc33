-- Monsta's string and table extensions and the Lua 5.1 functions a ported script
-- may call, added to the script's own libraries the first time it reads a name they
-- lack (see sandbox.lua), where it has not put a value of its own. This chunk runs
-- with the prelude's kit as its environment, which holds the library functions as
-- they were before the script ran; it returns each library's extensions.
local find, sub, gsub, gmatch, utf8_len = find, sub, gsub, gmatch, utf8_len
-- (the names of the libraries, here: where the extensions are gathered)
local string, table, math = {}, {}, {}

function string.split(s, sep)
  s, sep = check_string("split", 1, s), check_string("split", 2, sep)
  local parts, n = {}, 0
  if sep == "" then
    -- Characters, not bytes, when the text is UTF-8.
    local pattern = utf8_len(s) and charpattern or "."
    for char in gmatch(s, pattern) do n = n + 1; parts[n] = char end
    return parts
  end
  local start = 1
  while true do
    local first, last = find(s, sep, start, true)
    n = n + 1
    if first == nil then parts[n] = sub(s, start); return parts end
    parts[n] = sub(s, start, first - 1)
    start = last + 1
  end
end

function string.trim(s)
  local trimmed = gsub(gsub(check_string("trim", 1, s), "^%s+", ""), "%s+$", "")
  return trimmed
end

function string.starts(s, prefix)
  s, prefix = check_string("starts", 1, s), check_string("starts", 2, prefix)
  return sub(s, 1, #prefix) == prefix
end

function string.ends(s, suffix)
  s, suffix = check_string("ends", 1, s), check_string("ends", 2, suffix)
  return suffix == "" or sub(s, -#suffix) == suffix
end


function table.contains(t, value)
  for _, item in pairs(check_table("contains", 1, t)) do
    if item == value then return true end
  end
  return false
end

function table.slice(t, first, last)
  check_table("slice", 1, t)
  first = first == nil and 1 or check_number("slice", 2, first)
  last = last == nil and #t or check_number("slice", 3, last)
  local slice, n = {}, 0
  for i = first, last, first <= last and 1 or -1 do n = n + 1; slice[n] = t[i] end
  return slice
end

function table.getn(t) return #check_table("getn", 1, t) end

function table.maxn(t)
  local largest = 0
  for key in pairs(check_table("maxn", 1, t)) do
    if type(key) == "number" and key > largest then largest = key end
  end
  return largest
end

local exp, log_, floor, abs, huge = exp, log_, floor, abs, huge
function math.pow(x, y) return check_number("pow", 1, x) ^ check_number("pow", 2, y) end
function math.log10(x) return log_(check_number("log10", 1, x), 10) end
function math.ldexp(m, e) return check_number("ldexp", 1, m) * 2.0 ^ check_number("ldexp", 2, e) end
function math.frexp(x)
  check_number("frexp", 1, x)
  if x == 0 or x ~= x or x == huge or x == -huge then return x, 0 end
  -- As a float: abs(math.mininteger) wraps round to itself, whose log is nan.
  local e = floor(log_(abs(x + 0.0), 2)) + 1
  local m = x / 2.0 ^ e
  -- log2 can be off by one near powers of two: bring m into [0.5, 1).
  if abs(m) >= 1 then m, e = m / 2, e + 1 elseif abs(m) < 0.5 then m, e = m * 2, e - 1 end
  return m, e
end
function math.cosh(x) x = check_number("cosh", 1, x); return (exp(x) + exp(-x)) / 2 end
function math.sinh(x) x = check_number("sinh", 1, x); return (exp(x) - exp(-x)) / 2 end
function math.tanh(x)
  x = check_number("tanh", 1, x)
  if x > 20 then return 1.0 elseif x < -20 then return -1.0 end
  local e2 = exp(2 * x)
  return (e2 - 1) / (e2 + 1)
end

return { [kit_string] = string, [kit_table] = table, [kit_math] = math }
