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
  shared: {{- if .Values.queues.shared }}
    {{- toYaml .Values.queues.shared | nindent 4 }}
  {{- else }} {}
  {{- end }}
  defaultStartTimeout: {{ .Values.queues.defaultStartTimeout | quote }}
  startTimeout: {{- if .Values.queues.startTimeout }}
    {{- toYaml .Values.queues.startTimeout | nindent 4 }}
  {{- else }} {}
  {{- end }}
  pull: {{- if .Values.queues.pull }}
    {{- toYaml .Values.queues.pull | nindent 4 }}
  {{- else }} {}
  {{- end }}
namespaces: {{- if .Values.namespaces }}
  {{- toYaml .Values.namespaces | nindent 2 }}
{{- else }} []
{{- end }}
admission:
  requirePolicies: {{ .Values.admissionPolicy.required }}
  policies:
    {{- range list "require-job-create" "operator-only" "operator-jobs" }}
    - {{ include "kadence.fullname" $ }}-{{ . }}
    {{- end }}
leaderElection:
  enabled: {{ .Values.leaderElection.enabled }}
  leaseName: {{ include "kadence.fullname" . }}
  leaseNamespace: {{ .Release.Namespace }}
  leaseDuration: {{ .Values.leaderElection.leaseDuration | quote }}
  renewDeadline: {{ .Values.leaderElection.renewDeadline | quote }}
  retryPeriod: {{ .Values.leaderElection.retryPeriod | quote }}
{{- end }}

{{/*
A duration of the form the schema allows (1h30m, 15m, 10s) in whole seconds.
*/}}
{{- define "kadence.seconds" -}}
{{- $text := toString . -}}
{{- $total := 0 -}}
{{- range $unit, $factor := dict "h" 3600 "m" 60 "s" 1 -}}
{{- $amount := regexFind (printf "[0-9]+%s" $unit) $text | trimSuffix $unit | default "0" | atoi -}}
{{- $total = add $total (mul $amount $factor) -}}
{{- end -}}
{{- $total -}}
{{- end }}

{{/*
Refuse values the operator would refuse at start-up, or that would let two pods act
at once; the schema checks each value alone, this checks them together.
*/}}
{{- define "kadence.checkValues" -}}
{{- $election := .Values.leaderElection -}}
{{- $duration := include "kadence.seconds" $election.leaseDuration | atoi -}}
{{- $renew := include "kadence.seconds" $election.renewDeadline | atoi -}}
{{- $retry := include "kadence.seconds" $election.retryPeriod | atoi -}}
{{- if lt $retry 1 -}}
{{- fail (printf "leaderElection.retryPeriod (%s) must be at least 1s" $election.retryPeriod) -}}
{{- end -}}
{{- if le $duration $renew -}}
{{- fail (printf "leaderElection.leaseDuration (%s) must be longer than leaderElection.renewDeadline (%s)" $election.leaseDuration $election.renewDeadline) -}}
{{- end -}}
{{- if le $renew $retry -}}
{{- fail (printf "leaderElection.renewDeadline (%s) must be longer than leaderElection.retryPeriod (%s)" $election.renewDeadline $election.retryPeriod) -}}
{{- end -}}
{{- if and (not $election.enabled) (gt (int .Values.replicas) 1) -}}
{{- fail "replicas > 1 needs leaderElection.enabled: without it every replica acts on its own" -}}
{{- end -}}
{{- end }}

{{/*
The pod's affinity: the user's, or else a preference for spreading the operator's
pods over nodes, so that a node's loss takes the leader or the standby, not both.
*/}}
{{- define "kadence.affinity" -}}
{{- if .Values.affinity -}}
{{- toYaml .Values.affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "kadence.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}

{{/*
What the operator does in each namespace it watches. Granted cluster-wide by a
ClusterRole when all namespaces are watched, or by a Role in each watched one.
Every verb here is one the operator's code uses (operator/kadence/kube.py and
kopf's watches); docs/security.md says which call needs it.
*/}}
{{- define "kadence.workloadRules" -}}
# Schedules are read, never changed: kopf lists and watches them, and the
# operator gets one again after a conflicting status write. kopf keeps no
# finalizers or annotations on them (event handlers only).
- apiGroups:
    - kadence.dev
  resources:
    - schedules
  verbs:
    - get
    - list
    - watch
# Tasks: watched, created for a Schedule's runs, labelled with their queue when
# made by hand (patch), and deleted beyond the history limits.
- apiGroups:
    - kadence.dev
  resources:
    - tasks
  verbs:
    - get
    - list
    - watch
    - create
    - patch
    - delete
# Status is written only through the status subresource, as a merge patch.
- apiGroups:
    - kadence.dev
  resources:
    - schedules/status
    - tasks/status
  verbs:
    - patch
# A Job's ownerReference to its Task has blockOwnerDeletion, which needs this
# where the OwnerReferencesPermissionEnforcement admission plugin is on. (A
# Task's ownerReference to its Schedule has none: no schedules/finalizers.)
- apiGroups:
    - kadence.dev
  resources:
    - tasks/finalizers
  verbs:
    - update
# The Jobs that run the tasks; also created with dryRun=All to check a
# Schedule's jobTemplate. No update or patch: a Job is never changed.
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
# Events on the resources it handles: each one is new (never patched).
- apiGroups:
    - ""
    - events.k8s.io
  resources:
    - events
  verbs:
    - create
{{- end }}

{{/*
What leader election needs, in the release's namespace only (a Role there, in
every mode: with `namespaces` set, that namespace need not be watched).
*/}}
{{- define "kadence.leaderElectionRules" -}}
# The Lease the replicas agree on a leader with: read, renewed and watched by name
# only (a watch with fieldSelector metadata.name=NAME is authorized as that name), so
# that a standby takes a released Lease at once.
- apiGroups:
    - coordination.k8s.io
  resources:
    - leases
  verbs:
    - get
    - update
    - list
    - watch
  resourceNames:
    - {{ include "kadence.fullname" . }}
# Made by the first replica when it is missing. RBAC cannot restrict create by
# name (the object has none until it exists).
- apiGroups:
    - coordination.k8s.io
  resources:
    - leases
  verbs:
    - create
# The LeaderElection Event on the Lease when a replica becomes leader: each one
# new (never patched).
- apiGroups:
    - ""
    - events.k8s.io
  resources:
    - events
  verbs:
    - create
{{- end }}

{{/*
What the operator needs cluster-wide, in every mode. kopf runs standalone (no
peering resources: the replicas agree on a leader through their own Lease, see
kadence.leaderElectionRules) with event posting off, and needs no
CustomResourceDefinitions (it finds the resources by API discovery) and no
namespaces (the watched namespaces are exact names, not patterns).
*/}}
{{- define "kadence.frameworkRules" -}}
{{- $fullname := include "kadence.fullname" . -}}
# Its own admission policies and their bindings (cluster-scoped), read only and
# by name: the operator checks that they are in force before it makes Jobs.
- apiGroups:
    - admissionregistration.k8s.io
  resources:
    - validatingadmissionpolicies
    - validatingadmissionpolicybindings
  verbs:
    - get
  resourceNames:
    {{- range list "require-job-create" "operator-only" "operator-jobs" }}
    - {{ $fullname }}-{{ . }}
    {{- end }}
{{- end }}
