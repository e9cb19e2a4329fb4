-- Argo CD health of a gpudiag.io GPUDiagnostic, read from its kstatus conditions (docs/gitops.md).
-- Degraded only when the diagnostic cannot run (Stalled, phase Failed). What it found about the
-- GPUs (the Healthy condition) is in the message of a Healthy diagnostic: a broken GPU is a
-- finding, not a failed sync. Base and table libraries only (argocd-cm's default).
local hs = { status = "Progressing", message = "Waiting for the gpudiag operator to observe the diagnostic" }

local function find(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then return c end
  end
  return nil
end

local function text(c)
  if c == nil then return "" end
  return (c.reason or "") .. ": " .. (c.message or "")
end

local status = obj.status
if status == nil or status.conditions == nil then return hs end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the gpudiag operator to observe generation " .. generation
  return hs
end

local ready = find(status.conditions, "Ready")
local reconciling = find(status.conditions, "Reconciling")
local stalled = find(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled)
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.message = text(reconciling)
elseif ready == nil or (ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation) then
  return hs
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  local healthy = find(status.conditions, "Healthy")
  if healthy ~= nil and healthy.message ~= nil and healthy.message ~= "" then
    hs.message = hs.message .. "; " .. healthy.message
  end
elseif ready.status == "False" or status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = text(ready)
else
  hs.message = text(ready)
end
return hs
