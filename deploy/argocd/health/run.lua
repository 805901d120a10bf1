-- Argo CD health of a TrainingRun or EvaluationRun (agentensor.dev/v1alpha1), from its conditions.
-- Healthy: Succeeded. Degraded: Failed, or a spec the operator refuses (invalid, or a change to a
-- started run outside spec.suspend/parallelism). Suspended: spec.suspend.
-- Progressing: everything else (not yet seen, waiting for its PromptConfig, queued, running).
local hs = {status = "Progressing", message = "Waiting for the agentensor operator"}

local function condition(status, type_)
  if status.conditions ~= nil then
    for _, c in ipairs(status.conditions) do
      if c.type == type_ then
        return c
      end
    end
  end
  return nil
end

local function says(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.status == nil then
  return hs
end
local status = obj.status

local failed = condition(status, "Failed")
if failed ~= nil and failed.status == "True" then
  hs.status = "Degraded"
  hs.message = says(failed)
  return hs
end

local succeeded = condition(status, "Succeeded")
if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
  hs.message = says(succeeded)
  return hs
end

local accepted = condition(status, "Accepted")
if accepted ~= nil and accepted.status == "False" then
  -- a missing PromptConfig usually arrives in the same sync; any other refusal needs a spec fix
  if accepted.reason ~= "PromptConfigNotFound" then
    hs.status = "Degraded"
  end
  hs.message = says(accepted)
  return hs
end

if accepted ~= nil and accepted.reason == "SpecChangeRejected" then
  -- the run goes on with the spec it started with; the one in Git needs reverting (or a new run)
  hs.status = "Degraded"
  hs.message = says(accepted)
  return hs
end

local seen = status.observedGeneration
if accepted ~= nil and accepted.observedGeneration ~= nil then
  seen = accepted.observedGeneration
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and seen ~= nil and seen < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

local queued = condition(status, "Queued")
if queued ~= nil and queued.status == "True" then
  if queued.reason == "Suspended" then
    hs.status = "Suspended"
  end
  hs.message = says(queued)
  return hs
end

local running = condition(status, "Running")
if running ~= nil and running.status == "True" then
  hs.message = says(running)
  return hs
end

if status.phase ~= nil then
  hs.message = "Phase " .. status.phase
end
return hs
