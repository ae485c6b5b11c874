"""Field tables of the Kubernetes protobuf messages the emulator reads: the kinds kubectl's typed
generators send (Namespace, ConfigMap, Secret, ServiceAccount, Service, Pod, Deployment,
PodDisruptionBudget, Eviction, RBAC roles and bindings) and what they contain. Field numbers
are those of upstream's ``generated.proto`` (``k8s.io/api``, ``k8s.io/apimachinery``).

Each message maps a field number to (JSON name, type). Types: ``string``, ``bytes`` (base64 in
JSON), ``bool``, ``int``, ``Time``, ``MicroTime``, ``Quantity``, ``IntOrString``, ``RawJSON``
(a ``runtime.RawExtension``), another message's name, ``[T]`` (repeated), ``map<T>`` (string
keys), ``T?`` (a Go pointer: kept in JSON even at its zero value), and ``SKIP`` (read and
dropped: the status a create request carries, which a real server resets too). An empty JSON
name marks an embedded struct whose fields are inline in JSON (``LocalObjectReference`` in a
key selector, ``VolumeSource`` in a volume)."""

from __future__ import annotations

__all__ = ["KINDS", "MESSAGES", "SKIP", "Table"]

from gpu_operator.sandbox.apiserver.protoschema_pod import POD_MESSAGES, SKIP, Table

_META: dict[str, Table] = {
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        4: ("selfLink", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "Time"),
        9: ("deletionTimestamp", "Time"),
        10: ("deletionGracePeriodSeconds", "int?"),
        11: ("labels", "map<string>"),
        12: ("annotations", "map<string>"),
        13: ("ownerReferences", "[OwnerReference]"),
        14: ("finalizers", "[string]"),
        17: ("managedFields", SKIP),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool?"),
        7: ("blockOwnerDeletion", "bool?"),
    },
    "LabelSelector": {
        1: ("matchLabels", "map<string>"),
        2: ("matchExpressions", "[LabelSelectorRequirement]"),
    },
    "LabelSelectorRequirement": {
        1: ("key", "string"),
        2: ("operator", "string"),
        3: ("values", "[string]"),
    },
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "int?"),
        2: ("preconditions", "Preconditions"),
        3: ("orphanDependents", "bool?"),
        4: ("propagationPolicy", "string?"),
        5: ("dryRun", "[string]"),
        6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "bool?"),
    },
    "Preconditions": {1: ("uid", "string?"), 2: ("resourceVersion", "string?")},
}

_OBJECTS: dict[str, Table] = {
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("", SKIP)},
    "NamespaceSpec": {1: ("finalizers", "[string]")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map<string>"),
        3: ("binaryData", "map<bytes>"),
        4: ("immutable", "bool?"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map<bytes>"),
        3: ("type", "string"),
        4: ("stringData", "map<string>"),
        5: ("immutable", "bool?"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "[ObjectReference]"),
        3: ("imagePullSecrets", "[LocalObjectReference]"),
        4: ("automountServiceAccountToken", "bool?"),
    },
    "ObjectReference": {
        1: ("kind", "string"),
        2: ("namespace", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("resourceVersion", "string"),
        7: ("fieldPath", "string"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    "Pod": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec"), 3: ("", SKIP)},
    "Eviction": {1: ("metadata", "ObjectMeta"), 2: ("deleteOptions", "DeleteOptions")},
    "Deployment": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "DeploymentSpec"),
        3: ("", SKIP),
    },
    "DeploymentSpec": {
        1: ("replicas", "int?"),
        2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int?"),
        7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "int?"),
    },
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("", SKIP)},
    "ServiceSpec": {
        1: ("ports", "[ServicePort]"),
        2: ("selector", "map<string>"),
        3: ("clusterIP", "string"),
        4: ("type", "string"),
        5: ("externalIPs", "[string]"),
        7: ("sessionAffinity", "string"),
        8: ("loadBalancerIP", "string"),
        9: ("loadBalancerSourceRanges", "[string]"),
        10: ("externalName", "string"),
        11: ("externalTrafficPolicy", "string"),
        12: ("healthCheckNodePort", "int"),
        13: ("publishNotReadyAddresses", "bool"),
        18: ("clusterIPs", "[string]"),
        17: ("ipFamilyPolicy", "string?"),
        19: ("ipFamilies", "[string]"),
        20: ("allocateLoadBalancerNodePorts", "bool?"),
        21: ("loadBalancerClass", "string?"),
        22: ("internalTrafficPolicy", "string?"),
    },
    "ServicePort": {
        1: ("name", "string"),
        2: ("protocol", "string"),
        3: ("port", "int"),
        4: ("targetPort", "IntOrString"),
        5: ("nodePort", "int"),
        6: ("appProtocol", "string?"),
    },
    "PodDisruptionBudget": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "PodDisruptionBudgetSpec"),
        3: ("", SKIP),
    },
    "PodDisruptionBudgetSpec": {
        1: ("minAvailable", "IntOrString"),
        2: ("selector", "LabelSelector"),
        3: ("maxUnavailable", "IntOrString"),
        4: ("unhealthyPodEvictionPolicy", "string?"),
    },
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[PolicyRule]")},
    "ClusterRole": {
        1: ("metadata", "ObjectMeta"),
        2: ("rules", "[PolicyRule]"),
        3: ("aggregationRule", "AggregationRule"),
    },
    "AggregationRule": {1: ("clusterRoleSelectors", "[LabelSelector]")},
    "PolicyRule": {
        1: ("verbs", "[string]"),
        2: ("apiGroups", "[string]"),
        3: ("resources", "[string]"),
        4: ("resourceNames", "[string]"),
        5: ("nonResourceURLs", "[string]"),
    },
    "RoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "[Subject]"),
        3: ("roleRef", "RoleRef"),
    },
    "Subject": {
        1: ("kind", "string"),
        2: ("apiGroup", "string"),
        3: ("name", "string"),
        4: ("namespace", "string"),
    },
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdate")},
    "RollingUpdate": {1: ("maxUnavailable", "IntOrString"), 2: ("maxSurge", "IntOrString")},
}

MESSAGES: dict[str, Table] = {**_META, **_OBJECTS, **POD_MESSAGES}

KINDS: dict[str, str] = {
    "v1/Namespace": "Namespace",
    "v1/ConfigMap": "ConfigMap",
    "v1/Secret": "Secret",
    "v1/ServiceAccount": "ServiceAccount",
    "v1/Pod": "Pod",
    "apps/v1/Deployment": "Deployment",
    "policy/v1/Eviction": "Eviction",
    "policy/v1/PodDisruptionBudget": "PodDisruptionBudget",
    "v1/Service": "Service",
    "rbac.authorization.k8s.io/v1/Role": "Role",
    "rbac.authorization.k8s.io/v1/ClusterRole": "ClusterRole",
    "rbac.authorization.k8s.io/v1/RoleBinding": "RoleBinding",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "RoleBinding",
    "v1/DeleteOptions": "DeleteOptions",
    "meta.k8s.io/v1/DeleteOptions": "DeleteOptions",
}
"""``apiVersion/kind`` of the envelope → the message its raw bytes hold."""
