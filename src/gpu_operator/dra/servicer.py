"""The gRPC servicers: ``k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin`` (prepare and unprepare,
translated to the ``Preparer``) and the plugin watcher's ``pluginregistration.Registration``
(``GetInfo``: type ``DRAPlugin``, the driver name, the DRA socket, ``v1.DRAPlugin``; and the
kubelet's registration status). They translate between protobuf and the core; nothing else."""

from __future__ import annotations

import logging
import threading
from typing import Any

from gpu_operator.dra import DRA_SERVICE, DRIVER_NAME, PLUGIN_TYPE
from gpu_operator.dra.claims import ClaimRef
from gpu_operator.dra.prepare import Preparer
from gpu_operator.protos import dra_v1_pb2 as dra
from gpu_operator.protos import pluginregistration_v1_pb2 as reg
from gpu_operator.protos.grpc_api import DRAPluginServicerBase, PluginRegistrationServicerBase

log = logging.getLogger(__name__)


def _ref(claim: Any) -> ClaimRef:
    return ClaimRef(namespace=claim.namespace, name=claim.name, uid=claim.uid)


class DraServicer(DRAPluginServicerBase):
    def __init__(self, preparer: Preparer):
        self.preparer = preparer

    def NodePrepareResources(
        self, request: dra.NodePrepareResourcesRequest, context: Any
    ) -> dra.NodePrepareResourcesResponse:
        response = dra.NodePrepareResourcesResponse()
        for claim in request.claims:
            devices, error = self.preparer.prepare(_ref(claim))
            entry = response.claims[claim.uid]
            if error:
                entry.error = error
                continue
            entry.devices.extend(
                dra.Device(
                    request_names=list(d.request_names),
                    pool_name=d.pool,
                    device_name=d.device,
                    cdi_device_ids=list(d.cdi_ids),
                )
                for d in devices
            )
        return response

    def NodeUnprepareResources(
        self, request: dra.NodeUnprepareResourcesRequest, context: Any
    ) -> dra.NodeUnprepareResourcesResponse:
        response = dra.NodeUnprepareResourcesResponse()
        for claim in request.claims:
            response.claims[claim.uid].error = self.preparer.unprepare(_ref(claim))
        return response


class RegistrationServicer(PluginRegistrationServicerBase):
    """What the kubelet's plugin watcher asks on our registration socket."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        """The DRA socket's path, as the kubelet dials it (``unix:`` + endpoint)."""
        self.status: reg.RegistrationStatus | None = None
        self.registered = threading.Event()

    def GetInfo(self, request: reg.InfoRequest, context: Any) -> reg.PluginInfo:
        return reg.PluginInfo(
            type=PLUGIN_TYPE,
            name=DRIVER_NAME,
            endpoint=self.endpoint,
            supported_versions=[DRA_SERVICE],
        )

    def NotifyRegistrationStatus(
        self, request: reg.RegistrationStatus, context: Any
    ) -> reg.RegistrationStatusResponse:
        self.status = request
        if request.plugin_registered:
            log.info("registered with the kubelet as DRA driver %s", DRIVER_NAME)
            self.registered.set()
        else:
            log.error("the kubelet refused the registration: %s", request.error)
            self.registered.clear()
        return reg.RegistrationStatusResponse()
