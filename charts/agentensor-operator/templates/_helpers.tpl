{{/* Names, labels and the few derived settings shared by the templates. */}}

{{- define "agentensor-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentensor-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agentensor-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object; selectorLabels are the immutable subset used by selectors. */}}
{{- define "agentensor-operator.labels" -}}
helm.sh/chart: {{ include "agentensor-operator.chart" . }}
{{ include "agentensor-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentensor
{{- end }}

{{- define "agentensor-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentensor-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "agentensor-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agentensor-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image reference: repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "agentensor-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "agentensor-operator.runnerImage" -}}
{{- default (include "agentensor-operator.image" .) .Values.runner.image }}
{{- end }}

{{/* Namespaces that get runner ServiceAccounts (and, with bundled PostgreSQL, the DSN Secret). */}}
{{- define "agentensor-operator.runNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- toJson (uniq .Values.watchNamespaces) }}
{{- else }}
{{- toJson (uniq (prepend .Values.runner.serviceAccount.extraNamespaces .Release.Namespace)) }}
{{- end }}
{{- end }}

{{/* The Secret (name and key) holding the DSN, in the release namespace and every run namespace. */}}
{{- define "agentensor-operator.databaseSecretName" -}}
{{- if .Values.database.bundled.enabled }}
{{- printf "%s-postgresql" (include "agentensor-operator.fullname" .) }}
{{- else }}
{{- required "database.existingSecret: name a Secret holding the database URL, or set database.bundled.enabled=true" .Values.database.existingSecret }}
{{- end }}
{{- end }}

{{- define "agentensor-operator.databaseSecretKey" -}}
{{- if .Values.database.bundled.enabled }}url{{ else }}{{ .Values.database.existingSecretKey }}{{ end }}
{{- end }}

{{/* Bundled PostgreSQL: the password is the value given, else the one already stored in the
release namespace's Secret (so upgrades keep it), else generated once per render (all copies of
the Secret share it: the generated value is memoised in .Values for the rest of the render). */}}
{{- define "agentensor-operator.postgresql.password" -}}
{{- $bundled := .Values.database.bundled }}
{{- if $bundled.password }}
{{- $bundled.password }}
{{- else }}
{{- $stored := lookup "v1" "Secret" .Release.Namespace (include "agentensor-operator.databaseSecretName" .) }}
{{- if and $stored $stored.data (hasKey $stored.data "password") }}
{{- index $stored.data "password" | b64dec }}
{{- else }}
{{- if not (hasKey $bundled "generatedPassword") }}
{{- $_ := set $bundled "generatedPassword" (randAlphaNum 32) }}
{{- end }}
{{- $bundled.generatedPassword }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agentensor-operator.postgresql.host" -}}
{{- printf "%s-postgresql.%s.svc" (include "agentensor-operator.fullname" .) .Release.Namespace }}
{{- end }}

{{/* RBAC rules the operator needs in each namespace it serves (docs/security.md explains each). */}}
{{- define "agentensor-operator.namespacedRules" -}}
# Watch the three kinds; patch them for kopf's finalizer and progress annotations, and for
# spec.activeVersion under promotion policy Auto.
- apiGroups: [agentensor.dev]
  resources: [promptconfigs, trainingruns, evaluationruns]
  verbs: [get, list, watch, patch]
- apiGroups: [agentensor.dev]
  resources: [promptconfigs/status, trainingruns/status, evaluationruns/status]
  verbs: [get, patch]
# Runner Jobs and ConfigMaps carry blockOwnerDeletion owner references; clusters that enforce
# OwnerReferencesPermissionEnforcement (e.g. OpenShift) require update on the owner's finalizers.
- apiGroups: [agentensor.dev]
  resources: [promptconfigs/finalizers, trainingruns/finalizers, evaluationruns/finalizers]
  verbs: [update]
# One runner Job per run: created, watched (the Job index), counted (the cap), stopped, deleted.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
# The run manifest and the active PromptConfig version are ConfigMaps the operator writes.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
