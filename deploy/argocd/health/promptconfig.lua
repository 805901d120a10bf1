-- Argo CD health of a PromptConfig (agentensor.dev/v1alpha1), from its Ready condition.
-- Healthy: the active version is materialized in its "-active" ConfigMap. Degraded: it cannot be
-- (e.g. spec.activeVersion names a version the database does not hold; the last good one stays live).
local hs = {status = "Progressing", message = "Waiting for the agentensor operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    ready = c
  end
end
if ready == nil then
  return hs
end
local message = ready.reason
if ready.message ~= nil and ready.message ~= "" then
  message = ready.reason .. ": " .. ready.message
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = message
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
end
hs.message = message
return hs
