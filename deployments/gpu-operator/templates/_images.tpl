{{/*
Which image each operand runs (docs/install.md, "Images"). The table is upstream-images.yaml,
generated from src/gpu_operator/operator/upstream_images.py: NVIDIA's repository/image of each
operand (by version where NVIDIA renamed one), our image and our releases.

The rule, per operand key K with the user's repository R, image I, version V:
  - nothing set: no image fields; the operator's *_IMAGE env gives our image.
  - I alone: used as given (upstream's rule).
  - V = NAME:TAG (an image:tag typed into a version) where NAME is K's image: read as TAG.
  - V one of our releases, or R/I naming NVIDIA's image with no V and no NVIDIA default
    (the validator, whose tag NVIDIA's chart takes from its appVersion): our image, our tag.
  - otherwise NVIDIA's image of K: R, else NVIDIA's repository; I, else NVIDIA's image name
    for V; V, else NVIDIA's default tag.
operator.* is ours always: we are the operator (see "gpu-operator.ours").
Each decision a user should hear of is a note: NOTES.txt prints them and the ClusterPolicy
carries them (annotation gpu-operator.nvidia.com/image-notes) for Events, `gpu-operator images`
and `preflight`.
*/}}

{{/* The table (a dict). */}}
{{- define "gpu-operator.table" -}}
{{- .Files.Get "upstream-images.yaml" -}}
{{- end }}

{{/* "true" when (list VERSION SINCE): VERSION's leading X.Y.Z is at least SINCE; a version
without a number counts as the newest. */}}
{{- define "gpu-operator.at-least" -}}
{{- $have := regexFind "[0-9]+(\\.[0-9]+)*" (index . 0) }}
{{- $since := index . 1 }}
{{- if or (not $since) (not $have) }}true
{{- else }}
{{- $a := splitList "." $have }}
{{- $b := splitList "." $since }}
{{- $decided := "" }}
{{- range $i, $n := $b }}
{{- if not $decided }}
{{- $x := 0 }}
{{- if lt $i (len $a) }}{{- $x = atoi (index $a $i) }}{{- end }}
{{- if gt $x (atoi $n) }}{{- $decided = "true" }}
{{- else if lt $x (atoi $n) }}{{- $decided = "false" }}
{{- end }}
{{- end }}
{{- end }}
{{- if ne $decided "false" }}true{{- end }}
{{- end }}
{{- end }}

{{/* Our own image as YAML {repository, image, version, notes}. */}}
{{- define "gpu-operator.ours" -}}
{{- $t := include "gpu-operator.table" . | fromYaml }}
{{- $op := .Values.operator }}
{{- $repo := toString ($op.repository | default $t.ours.repository) }}
{{- $image := toString ($op.image | default $t.ours.image) }}
{{- $version := toString ($op.version | default "") }}
{{- $notes := list }}
{{- if contains $t.nvidiaRegistryPath $repo }}
{{- $notes = append $notes (printf "operator.repository=%s: NVIDIA's operator image; this chart installs gpu-operator, which is the operator, so it runs %s/%s" $repo $t.ours.repository $t.ours.image) }}
{{- $repo = $t.ours.repository }}
{{- $image = $t.ours.image }}
{{- end }}
{{- if not $version }}
{{- $version = .Chart.AppVersion }}
{{- else if not (or (has $version $t.ours.releases) (hasPrefix "sha256:" $version)) }}
{{- $notes = append $notes (printf "operator.version=%s: not a release of gpu-operator (an NVIDIA operator version?); we are the operator, so it runs our %s/%s:%s, as does every operand that runs our image" $version $repo $image .Chart.AppVersion) }}
{{- $version = .Chart.AppVersion }}
{{- end }}
{{- dict "repository" $repo "image" $image "version" $version "notes" $notes | toYaml }}
{{- end }}

{{/* Our image reference: repository/image:version (or @sha256:…). */}}
{{- define "gpu-operator.image" -}}
{{- $o := include "gpu-operator.ours" . | fromYaml }}
{{- printf "%s/%s%s%s" $o.repository $o.image (hasPrefix "sha256:" $o.version | ternary "@" ":") $o.version -}}
{{- end }}

{{/* The decision for one operand, as YAML {repository, image, version, note} (empty fields:
none rendered). Call with (dict "key" K "v" SECTION "root" $). */}}
{{- define "gpu-operator.decide" -}}
{{- $root := .root }}
{{- $key := .key }}
{{- $t := include "gpu-operator.table" $root | fromYaml }}
{{- $ours := include "gpu-operator.ours" $root | fromYaml }}
{{- $v := .v | default dict }}
{{- $repo := toString ($v.repository | default "") }}
{{- $image := toString ($v.image | default "") }}
{{- $version := toString ($v.version | default "") }}
{{- $entries := get $t.operands $key }}
{{- $out := dict }}
{{- $notes := list }}
{{- $split := "" }}
{{- if or $repo $version }}
{{- if and (contains ":" $version) (not (hasPrefix "sha256:" $version)) }}
{{- $name := regexReplaceAll ":.*$" $version "" }}
{{- $tag := regexReplaceAll "^[^:]*:" $version "" }}
{{- $names := list $image }}
{{- range $entries }}{{- $names = append $names .image }}{{- end }}
{{- if and $name (has $name $names) }}
{{- $split = $version }}
{{- $image = $image | default $name }}
{{- $version = $tag }}
{{- else }}
{{- fail (printf "%s.version=%s: a version can't hold ':'; set %s.image and %s.version apart (e.g. %s.version=%s)" $key $version $key $key $key $tag) }}
{{- end }}
{{- end }}
{{- $entry := first $entries }}
{{- range $entries }}
{{- if include "gpu-operator.at-least" (list $version .since) }}{{- $entry = . }}{{- end }}
{{- end }}
{{- $nvidiaRepo := or (not $repo) (contains $t.nvidiaRegistryPath $repo) }}
{{- if or (has $version $t.ours.releases) (and (not $version) (not $entry.default)) }}
{{- $mine := and (ne $repo "") (not $nvidiaRepo) }}
{{- $_ := set $out "repository" ($mine | ternary $repo $ours.repository) }}
{{- $_ := set $out "image" ($mine | ternary ($image | default $ours.image) $ours.image) }}
{{- $_ := set $out "version" ($version | default $ours.version) }}
{{- if and (or $repo $image) (not $mine) }}
{{- $theirs := printf "%s/%s" ($repo | default $entry.repository) ($image | default $entry.image) }}
{{- $ourRef := printf "%s/%s:%s" $out.repository $out.image $out.version }}
{{- if $version }}
{{- $notes = append $notes (printf "%s: %s:%s is NVIDIA's image with our tag, which does not exist; it runs our %s" $key $theirs $version $ourRef) }}
{{- else }}
{{- $notes = append $notes (printf "%s: %s has no version here (NVIDIA's chart takes its own appVersion); it runs our %s" $key $theirs $ourRef) }}
{{- end }}
{{- end }}
{{- else }}
{{- $_ := set $out "repository" ($repo | default $entry.repository) }}
{{- $_ := set $out "image" ($image | default $entry.image) }}
{{- $_ := set $out "version" ($version | default $entry.default) }}
{{- if $split }}
{{- $notes = append $notes (printf "%s.version=%s: an image:tag in a version field, read as NVIDIA's %s/%s:%s" $key $split $out.repository $out.image $out.version) }}
{{- else if not (or $repo $image) }}
{{- $notes = append $notes (printf "%s.version=%s: NVIDIA's %s image, %s/%s:%s" $key $version $key $out.repository $out.image $out.version) }}
{{- end }}
{{- end }}
{{- else if $image }}
{{- $_ := set $out "image" $image }}
{{- end }}
{{- $_ := set $out "notes" $notes }}
{{- $out | toYaml }}
{{- end }}

{{/* The image fields of an operand section in the ClusterPolicy, by "gpu-operator.decide".
Call with (dict "key" K "v" SECTION "root" $). */}}
{{- define "gpu-operator.operand-image" -}}
{{- $d := include "gpu-operator.decide" . | fromYaml }}
{{- with $d.repository }}
repository: {{ . | quote }}
{{- end }}
{{- with $d.image }}
image: {{ . | quote }}
{{- end }}
{{- with $d.version }}
version: {{ . | quote }}
{{- end }}
{{- with .v.imagePullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- with .v.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Every image note, one per line: our operator's, then each operand's. */}}
{{- define "gpu-operator.image-notes" -}}
{{- $v := .Values }}
{{- $notes := (include "gpu-operator.ours" . | fromYaml).notes | default list }}
{{- $sections := list
  (list "driver.manager" $v.driver.manager)
  (list "toolkit" $v.toolkit)
  (list "devicePlugin" $v.devicePlugin)
  (list "gfd" $v.gfd)
  (list "migManager" $v.migManager)
  (list "dcgmExporter" $v.dcgmExporter)
  (list "validator" $v.validator)
  (list "nodeStatusExporter" $v.nodeStatusExporter)
  (list "operator.initContainer" $v.operator.initContainer) }}
{{- range $sections }}
{{- $d := include "gpu-operator.decide" (dict "key" (index . 0) "v" (index . 1) "root" $) | fromYaml }}
{{- $notes = concat $notes ($d.notes | default list) }}
{{- end }}
{{- join "\n" $notes }}
{{- end }}
