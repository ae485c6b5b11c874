"""The operator: the ClusterPolicy model and CRD, image rules, node labelling, one
renderer per operand state, the pure reconcile core and status, and the thin controller shell
(watches, server-side apply, leader election, metrics) around them."""
