-- funcoes-globais: the page's closing example, monitor_with_backoff.
-- Adapted: check_service reads the local API's health; the first two attempts fail
-- (a counter in the cache), and backoff starts at 0.01 s instead of 1 s.
local HTTP = os.getenv("HTTP")
local attempts_seen = 0
local function check_service(service_url)
  attempts_seen = attempts_seen + 1
  if attempts_seen < 3 then error("service not ready") end
  return http.get(service_url).body
end

local function monitor_with_backoff(service_url, max_attempts)
    local attempt = 1
    local backoff = 0.01  -- seconds

    while attempt <= max_attempts do
        log.info("Tentativa", attempt, "de", max_attempts)
        local success, status = pcall(function()
            return with_timeout(5000, function()
                return check_service(service_url)
            end)
        end)

        if success and status == "healthy" then
            log.info("Serviço saudável")
            return true
        end

        -- Increase exponential backoff
        sleep(backoff)
        backoff = math.min(backoff * 2, 60)  -- Maximum 60 seconds
        attempt = attempt + 1
    end

    -- All attempts failed
    return false
end

print(monitor_with_backoff(HTTP .. "/api/health", 5), attempts_seen)
print(monitor_with_backoff(HTTP .. "/api/missing", 2))
--[==[ expect exit 0
true	3
false
]==]
