{{/* Names ---------------------------------------------------------------- */}}

{{- define "tenantguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tenantguard.fullname" -}}
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

{{- define "tenantguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tenantguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tenantguard.labels" -}}
helm.sh/chart: {{ include "tenantguard.chart" . }}
{{ include "tenantguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tenantguard
{{- end }}

{{- define "tenantguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tenantguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the pods mount: tls.crt + tls.key (+ ca.crt). */}}
{{- define "tenantguard.tlsSecretName" -}}
{{- if eq .Values.certs.mode "existingSecret" }}
{{- required "certs.existingSecret.name is required when certs.mode=existingSecret" .Values.certs.existingSecret.name }}
{{- else }}
{{- printf "%s-tls" (include "tenantguard.fullname" .) }}
{{- end }}
{{- end }}

{{/* Who can reach the webhook --------------------------------------------

The webhook pod listens on one port, 8443, for /mutate, /validate, /metrics,
/healthz and /readyz alike. The chart's NetworkPolicy (networkpolicy.yaml)
always selects the webhook pods; what it admits to that port:

- no networkPolicy.apiServer source given: every source (`from` omitted). A
  wrong guess at the API server's address would lock it out of a webhook that
  fails closed, so the chart never guesses; NOTES.txt says the port is open.
- cidrs and/or selectors given: only those, plus networkPolicy.metrics.from.

`tenantguard serve --trusted-network` is the operator's word that only the API
server reaches the port (the server then lets reviews reserve quota). The chart
gives it only when that holds as far as the chart can tell: the policy is
rendered, API server sources are named, and no metrics peer shares the port.
*/}}
{{- define "tenantguard.webhookPort" -}}8443{{- end }}

{{- define "tenantguard.apiServerRestricted" -}}
{{- $np := .Values.networkPolicy }}
{{- if and $np.enabled (or $np.apiServer.cidrs $np.apiServer.selectors) }}true{{ end }}
{{- end }}

{{- define "tenantguard.trustedNetwork" -}}
{{- if and (include "tenantguard.apiServerRestricted" .) (not .Values.networkPolicy.metrics.from) }}true{{ end }}
{{- end }}

{{/* A label selector that selects everything: absent, {}, or with neither
matchLabels nor matchExpressions. */}}
{{- define "tenantguard.selectorIsEmpty" -}}
{{- if not (and (kindIs "map" .) (or .matchLabels .matchExpressions)) }}true{{ end }}
{{- end }}

{{/* Refuses the API server sources that would admit far more than the API
server while --trusted-network says otherwise. */}}
{{- define "tenantguard.checkNetworkPolicy" -}}
{{- range .Values.networkPolicy.apiServer.cidrs }}
{{- if hasSuffix "/0" . }}
{{- fail (printf "networkPolicy.apiServer.cidrs: %s admits every address; to leave the webhook port open, leave cidrs and selectors empty" .) }}
{{- end }}
{{- end }}
{{- range .Values.networkPolicy.apiServer.selectors }}
{{- if include "tenantguard.selectorIsEmpty" .namespaceSelector }}
{{- if hasKey . "namespaceSelector" }}
{{- fail "networkPolicy.apiServer.selectors: an empty namespaceSelector selects every namespace, so any tenant's pod with the right labels would pass as the API server; pin it, e.g. {matchLabels: {kubernetes.io/metadata.name: kube-system}}" }}
{{- end }}
{{- if include "tenantguard.selectorIsEmpty" .podSelector }}
{{- fail "networkPolicy.apiServer.selectors: a peer without a namespaceSelector and with an empty podSelector selects every pod of the release namespace; name the API server's pods" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Client certificates (clientAuth) ---------------------------------------

The CA that signed the API server's client certificate, mounted read-only at
/etc/tenantguard/client-ca/ca.crt (a directory mount, so the server sees an
updated CA without a restart): from clientAuth.caBundle (a ConfigMap this
chart writes) or from clientAuth.existingSecret (your Secret or ConfigMap with
the key ca.crt). Exactly one of the two.
*/}}
{{- define "tenantguard.clientCAPath" -}}/etc/tenantguard/client-ca/ca.crt{{- end }}

{{/* A kubelet probe of the webhook container: HTTPS on /healthz or /readyz,
or a TCP check when --client-ca makes the server ask every client for a
certificate (the kubelet presents none). */}}
{{- define "tenantguard.probe" -}}
{{- /* HTTPS probes with or without clientAuth: the server asks for a client certificate but
answers /healthz and /readyz without one (only reviews must carry one). */ -}}
httpGet:
  path: {{ index . 1 }}
  port: https
  scheme: HTTPS
{{- end }}

{{- define "tenantguard.checkClientAuth" -}}
{{- $ca := .Values.clientAuth }}
{{- if $ca.enabled }}
{{- if and $ca.caBundle $ca.existingSecret.name }}
{{- fail "clientAuth: set clientAuth.caBundle or clientAuth.existingSecret.name, not both" }}
{{- end }}
{{- if not (or $ca.caBundle $ca.existingSecret.name) }}
{{- fail "clientAuth.enabled=true needs the CA that signed the API server's client certificate: clientAuth.caBundle (base64 of its PEM) or clientAuth.existingSecret.name (a Secret or ConfigMap with the key ca.crt)" }}
{{- end }}
{{- if and $ca.caBundle (not (hasPrefix "-----BEGIN CERTIFICATE-----" (b64dec $ca.caBundle | trim))) }}
{{- fail "clientAuth.caBundle must be the base64 of a PEM certificate (-----BEGIN CERTIFICATE-----), e.g. $(base64 -w0 ca.crt)" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tenantguard.image" -}}
{{- $tag := default .Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* DNS names of the Service, the SANs of the serving certificate. */}}
{{- define "tenantguard.serviceHosts" -}}
{{- $svc := include "tenantguard.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson }}
{{- end }}

{{/* Selectors -------------------------------------------------------------

The namespaces the webhooks never see. The release namespace (so the webhook
can always restart itself) and kube-system are written here, not in values:
values can only ADD names and ADD further expressions. Label selector
expressions are ANDed, so an added expression can narrow what is intercepted
but can never bring an excluded namespace back. `kubernetes.io/metadata.name`
is set by the API server to the namespace's own name and cannot be changed
by users, unlike any label we could ask admins to put on namespaces.
*/}}
{{- define "tenantguard.excludedNamespaces" -}}
{{- $always := list .Release.Namespace "kube-system" }}
{{- concat $always (.Values.webhooks.namespaceSelector.excludeNamespaces | default list) | uniq | toJson }}
{{- end }}

{{- define "tenantguard.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ include "tenantguard.excludedNamespaces" . }}
{{- with .Values.webhooks.namespaceSelector.matchExpressions }}
{{ toYaml . | indent 2 }}
{{- end }}
{{- end }}

{{/* Objects labelled tenantguard.io/ignore=true are skipped; who may set the
label is limited by the ValidatingAdmissionPolicy in opt-out-protection.yaml. */}}
{{- define "tenantguard.objectSelector" -}}
{{- $exprs := list }}
{{- if .Values.optOut.enabled }}
{{- $exprs = append $exprs (dict "key" "tenantguard.io/ignore" "operator" "NotIn" "values" (list "true")) }}
{{- end }}
{{- $exprs = concat $exprs (.Values.webhooks.objectSelector.matchExpressions | default list) }}
{{- if $exprs }}
matchExpressions:
{{ toYaml $exprs | indent 2 }}
{{- else }}
{}
{{- end }}
{{- end }}

{{/* Kubernetes' own controllers copy pod templates that were already admitted
(a Deployment's template into a ReplicaSet, a ReplicaSet's into Pods, ...).
They must be able to carry the opt-out label that an admin put on the parent,
whichever way kube-controller-manager authenticates. Hard-coded: dropping one
would silently stop an opted-out workload from creating pods. */}}
{{- define "tenantguard.workloadControllers" -}}
{{- list
  "system:kube-controller-manager"
  "system:serviceaccount:kube-system:deployment-controller"
  "system:serviceaccount:kube-system:replicaset-controller"
  "system:serviceaccount:kube-system:replication-controller"
  "system:serviceaccount:kube-system:statefulset-controller"
  "system:serviceaccount:kube-system:daemon-set-controller"
  "system:serviceaccount:kube-system:job-controller"
  "system:serviceaccount:kube-system:cronjob-controller"
  "system:serviceaccount:kube-system:generic-garbage-collector"
  | toJson }}
{{- end }}

{{/* Rules --------------------------------------------------------------- */}}

{{/* Mutation: only where a patch can be applied. A Pod's spec (and a Job's
pod template) is immutable after creation, so mutating their UPDATEs could
only produce patches the API server rejects; they are mutated on CREATE.
`kubectl debug` adds containers through pods/ephemeralcontainers (an UPDATE):
there the security-context defaults fill the new ephemeral containers only. */}}
{{- define "tenantguard.mutateRules" -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE"]
  resources: ["pods"]
  scope: Namespaced
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["UPDATE"]
  resources: ["pods/ephemeralcontainers"]
  scope: Namespaced
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["replicationcontrollers"]
  scope: Namespaced
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: ["CREATE"]
  resources: ["jobs"]
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["cronjobs"]
  scope: Namespaced
{{- end }}

{{/* Validation: every write that can change what a pod runs or may reach.
`pods/resize` is the in-place resize of a running pod's resources (an UPDATE
of that subresource only): its new requests and limits are judged like a new
pod's, against the resource rules and the tenant's quota. Only the kinds
listed here: never Nodes, Leases (coordination.k8s.io), Events or a wildcard,
which kubelets and controllers need whatever state tenantguard is in. */}}
{{- define "tenantguard.validateRules" -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]
  scope: Namespaced
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["UPDATE"]
  resources: ["pods/resize"]
  scope: Namespaced
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["jobs", "cronjobs"]
  scope: Namespaced
- apiGroups: ["networking.k8s.io"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["networkpolicies"]
  scope: Namespaced
{{- include "tenantguard.extraKindRules" . }}
{{- end }}

{{/* webhooks.extraKinds: the kinds CEL rules name (Services, Ingresses, ...), validated
only. Never a wildcard, and never what kubelets and controllers need whatever state
tenantguard is in (leases, nodes, events). */}}
{{- define "tenantguard.extraKindRules" -}}
{{- range .Values.webhooks.extraKinds }}
{{- range .resources }}
{{- if has (splitList "/" . | first) (list "leases" "nodes" "events") }}
{{- fail (printf "webhooks.extraKinds: %s must never be intercepted (kubelets and controllers need it whatever state tenantguard is in)" .) }}
{{- end }}
{{- end }}
{{- if has "coordination.k8s.io" .apiGroups }}
{{- fail "webhooks.extraKinds: the coordination.k8s.io group (leases) must never be intercepted" }}
{{- end }}
- apiGroups: {{ toJson .apiGroups }}
  apiVersions: {{ toJson (.apiVersions | default (list "v1")) }}
  operations: {{ toJson (.operations | default (list "CREATE" "UPDATE")) }}
  resources: {{ toJson .resources }}
  scope: Namespaced
{{- end }}
{{- end }}

{{/* Policies: filename -> YAML. The starter policy, then the demo set when
asked for, then values (a values key that names a file above replaces it, an
empty one removes it). Keys without .yaml/.yml get .yaml, so
`--set-file policies.team-x=./team-x.yaml` needs no escaping. */}}
{{- define "tenantguard.policyFiles" -}}
{{- if hasKey .Values "shippedPolicies" }}
{{- fail "shippedPolicies is now demoPolicies and is off by default: the demo tenants and their Enforce baseline are opt-in (--set demoPolicies.enabled=true); a plain install loads only the Warn-mode starter policy" }}
{{- end }}
{{- $files := dict }}
{{- if .Values.starterPolicy.enabled }}
{{- range $path, $_ := .Files.Glob "starter/*.yaml" }}
{{- $_ := set $files (base $path) ($.Files.Get $path) }}
{{- end }}
{{- end }}
{{- if .Values.demoPolicies.enabled }}
{{- range $path, $_ := .Files.Glob "policies/*.yaml" }}
{{- $name := base $path }}
{{- if not (has $name $.Values.demoPolicies.exclude) }}
{{- $_ := set $files $name ($.Files.Get $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $key, $content := omit .Values.policies "source" }}
{{- $name := $key }}
{{- if not (or (hasSuffix ".yaml" $key) (hasSuffix ".yml" $key)) }}
{{- $name = printf "%s.yaml" $key }}
{{- end }}
{{- if $content }}
{{- $_ := set $files $name $content }}
{{- else }}
{{- $_ := unset $files $name }}
{{- end }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/* What the policy files hold, for NOTES.txt: a JSON list of {file, kind,
name, enforcement}, one per policy document. A policy that names no
enforcement is in Enforce mode (the policy schema's default). A document that
is not a policy (a comment block, text that does not parse) is left out: the
server's own loader reports those. */}}
{{- define "tenantguard.policySummary" -}}
{{- $out := list }}
{{- $files := include "tenantguard.policyFiles" . | fromJson }}
{{- range $file := keys $files | sortAlpha }}
{{- range $text := regexSplit "(?m)^---" (index $files $file) -1 }}
{{- $doc := fromYaml $text }}
{{- if and (kindIs "map" $doc) (has (get $doc "kind") (list "ClusterPolicy" "TenantPolicy")) }}
{{- $spec := get $doc "spec" }}
{{- $mode := "Enforce" }}
{{- if and (kindIs "map" $spec) (get $spec "enforcement") }}
{{- $mode = get $spec "enforcement" | toString }}
{{- end }}
{{- $meta := get $doc "metadata" }}
{{- $name := "" }}
{{- if kindIs "map" $meta }}{{ $name = get $meta "name" | toString }}{{ end }}
{{- $out = append $out (dict "file" $file "kind" (get $doc "kind") "name" $name "enforcement" $mode) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Policies from the cluster, status, background audit -------------------

"true" when the server writes to the cluster (policy status with
policies.source=cluster, PolicyReports with backgroundAudit.enabled): then one
process is elected on a Lease and the pod gets the RBAC for what it writes. */}}
{{- define "tenantguard.policiesFromCluster" -}}
{{- if eq (.Values.policies.source | default "files") "cluster" }}true{{ end }}
{{- end }}

{{- define "tenantguard.writes" -}}
{{- if or (include "tenantguard.policiesFromCluster" .) .Values.backgroundAudit.enabled }}true{{ end }}
{{- end }}

{{- define "tenantguard.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (printf "%s-leader" (include "tenantguard.fullname" .)) }}
{{- end }}

{{/* Refuses what cannot work: the cluster's policies and the background audit
need the cluster (`--in-cluster`, which clusterView.enabled gives), and policy
files would be silently ignored with policies.source=cluster. The starter
policy (on by default) is simply not rendered then. */}}
{{- define "tenantguard.checkPolicySource" -}}
{{- if include "tenantguard.policiesFromCluster" . }}
{{- if not .Values.clusterView.enabled }}
{{- fail "policies.source=cluster reads the TenantPolicy and ClusterPolicy objects from the cluster: it needs clusterView.enabled=true" }}
{{- end }}
{{- if .Values.demoPolicies.enabled }}
{{- fail "demoPolicies are policy files; with policies.source=cluster apply them as objects instead (kubectl apply -f charts/tenantguard/policies/)" }}
{{- end }}
{{- range $key, $content := omit .Values.policies "source" }}
{{- if $content }}
{{- fail (printf "policies.%s is a policy file; with policies.source=cluster the server reads only the TenantPolicy and ClusterPolicy objects: kubectl apply it instead" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.backgroundAudit.enabled (not .Values.clusterView.enabled) }}
{{- fail "backgroundAudit.enabled judges the live pods of the cluster: it needs clusterView.enabled=true" }}
{{- end }}
{{- end }}
