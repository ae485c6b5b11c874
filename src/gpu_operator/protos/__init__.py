"""The kubelet's gRPC APIs: ``.proto`` sources written from the API spec and the stubs that
``make protos`` generates from them (checked in; a test proves regeneration gives the same).

``deviceplugin_v1beta1``: Registration and DevicePlugin services; ``podresources_v1``: the
PodResourcesLister service; ``pluginregistration_v1``: the plugin watcher's Registration service
(``GetInfo``) that DRA plugins serve; ``dra_v1``: the DRAPlugin service
(``NodePrepareResources``/``NodeUnprepareResources``), both from the Kubernetes source.
"""
