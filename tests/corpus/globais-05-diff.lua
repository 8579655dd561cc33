-- funcoes-globais: diff(lhs, rhs) on a counter, then on a rolled-over counter.
local current_value = 4294967290  -- Current value (near 32-bit rollover)
local previous_value = 4294967280  -- Previous value

local difference = diff(current_value, previous_value)
print(difference)

local current_with_rollover = 10  -- After rollover
local previous_before_rollover = 4294967295  -- Before rollover

local rollover_diff = diff(current_with_rollover, previous_before_rollover)
print("not reached", rollover_diff)
--[==[ expect exit 0
10
signal RepeatPrevValue
]==]
