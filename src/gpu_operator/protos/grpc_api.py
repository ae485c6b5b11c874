"""Typed names for the generated gRPC modules, which carry no type information: servicer
base classes, ``add_*_to_server`` functions and client stubs, as everyone else imports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gpu_operator.protos import deviceplugin_v1beta1_pb2_grpc as _dp
from gpu_operator.protos import dra_v1_pb2_grpc as _dra
from gpu_operator.protos import pluginregistration_v1_pb2_grpc as _reg
from gpu_operator.protos import podresources_v1_pb2_grpc as _pr

if TYPE_CHECKING:
    DevicePluginServicerBase = object
    RegistrationServicerBase = object
    PodResourcesListerServicerBase = object
    DRAPluginServicerBase = object
    PluginRegistrationServicerBase = object
else:
    DevicePluginServicerBase = _dp.DevicePluginServicer
    RegistrationServicerBase = _dp.RegistrationServicer
    PodResourcesListerServicerBase = _pr.PodResourcesListerServicer
    DRAPluginServicerBase = _dra.DRAPluginServicer
    PluginRegistrationServicerBase = _reg.RegistrationServicer

add_device_plugin_servicer: Callable[[Any, Any], None] = _dp.add_DevicePluginServicer_to_server
add_registration_servicer: Callable[[Any, Any], None] = _dp.add_RegistrationServicer_to_server
add_pod_resources_servicer: Callable[[Any, Any], None] = (
    _pr.add_PodResourcesListerServicer_to_server
)
DevicePluginStub: Callable[[Any], Any] = _dp.DevicePluginStub
RegistrationStub: Callable[[Any], Any] = _dp.RegistrationStub
PodResourcesListerStub: Callable[[Any], Any] = _pr.PodResourcesListerStub
add_dra_plugin_servicer: Callable[[Any, Any], None] = _dra.add_DRAPluginServicer_to_server
add_plugin_registration_servicer: Callable[[Any, Any], None] = (
    _reg.add_RegistrationServicer_to_server
)
DRAPluginStub: Callable[[Any], Any] = _dra.DRAPluginStub
PluginRegistrationStub: Callable[[Any], Any] = _reg.RegistrationStub
