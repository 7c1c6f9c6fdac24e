{{/*
Names and labels shared by the templates.
*/}}

{{- define "kadence.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The base name of the objects: the release name, unless it lacks the chart name.
Truncated to leave room for suffixes such as "-metrics" and "-framework".
*/}}
{{- define "kadence.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kadence.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kadence.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kadence.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kadence.labels" -}}
helm.sh/chart: {{ include "kadence.chart" . }}
{{ include "kadence.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: kadence
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kadence.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kadence.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kadence.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's configuration file, exactly the keys that `kadence run --config`
accepts (unknown keys are an error there, so nothing else goes in).
*/}}
{{- define "kadence.config" -}}
queues:
  defaultCapacity: {{ .Values.queues.defaultCapacity }}
  capacity: {{- if .Values.queues.capacity }}
    {{- toYaml .Values.queues.capacity | nindent 4 }}
  {{- else }} {}
  {{- end }}
namespaces: {{- if .Values.namespaces }}
  {{- toYaml .Values.namespaces | nindent 2 }}
{{- else }} []
{{- end }}
{{- end }}

{{/*
What the operator does in each namespace it watches. Granted cluster-wide by a
ClusterRole when all namespaces are watched, or by a Role in each watched one.
*/}}
{{- define "kadence.workloadRules" -}}
# Its own resources: watch them, create Tasks, patch them (kopf keeps its
# finalizer and progress annotations there) and delete finished Tasks beyond
# the history limits.
- apiGroups:
    - kadence.dev
  resources:
    - schedules
    - tasks
  verbs:
    - get
    - list
    - watch
    - create
    - patch
    - update
    - delete
# Status is written only through the status subresource.
- apiGroups:
    - kadence.dev
  resources:
    - schedules/status
    - tasks/status
  verbs:
    - get
    - patch
    - update
# Owner references with blockOwnerDeletion (Job -> Task -> Schedule) need this
# where the OwnerReferencesPermissionEnforcement admission plugin is on.
- apiGroups:
    - kadence.dev
  resources:
    - schedules/finalizers
    - tasks/finalizers
  verbs:
    - update
# The Jobs that run the tasks; also created with dryRun=All to check a
# Schedule's jobTemplate. No update: a Job is never changed, only replaced.
- apiGroups:
    - batch
  resources:
    - jobs
  verbs:
    - get
    - list
    - watch
    - create
    - delete
# ServiceAccounts, read only: a task whose Job names one that does not exist
# fails at once, instead of waiting for pods that can never be created.
- apiGroups:
    - ""
  resources:
    - serviceaccounts
  verbs:
    - get
# Events on the resources it handles.
- apiGroups:
    - ""
    - events.k8s.io
  resources:
    - events
  verbs:
    - create
    - patch
{{- end }}

{{/*
What kopf itself needs cluster-wide. Peering is off (standalone mode), so no
kopf.dev peering resources.
*/}}
{{- define "kadence.frameworkRules" -}}
# kopf watches CustomResourceDefinitions to notice resources added or removed
# while it runs (read-only; without it, only a warning and no runtime
# discovery).
- apiGroups:
    - apiextensions.k8s.io
  resources:
    - customresourcedefinitions
  verbs:
    - list
    - watch
{{- if .Values.namespaces }}
# When it serves chosen namespaces, kopf lists and watches namespaces to know
# which of them exist.
- apiGroups:
    - ""
  resources:
    - namespaces
  verbs:
    - list
    - watch
{{- end }}
{{- end }}
