"""vdsm error codes raised by the virt layer (they travel as JSON-RPC errors)."""

from __future__ import annotations

from protocol.jsonrpc import ErrorCode, JsonRpcError

__all__ = ["no_vm", "vm_exists", "vm_down", "create_error", "destroy_error",
           "invalid_parameter", "resource_unavailable", "general_error", "snapshot_error",
           "merge_failed", "image_not_found"]


def no_vm(vm_id: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.NO_VM, f"Virtual machine does not exist: vmId={vm_id}")


def vm_exists(vm_id: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.VM_EXISTS, f"Virtual machine already exists: vmId={vm_id}")


def vm_down(vm_id: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.VM_DOWN, f"Virtual machine is down: vmId={vm_id}")


def create_error(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.CREATE_ERROR, f"Error creating the requested VM: {detail}")


def destroy_error(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.DESTROY_ERROR, f"Failed to destroy VM: {detail}")


def invalid_parameter(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.INVALID_PARAMETER, f"Invalid parameter: {detail}")


def resource_unavailable(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.RESOURCE_UNAVAILABLE, f"Resource unavailable: {detail}")


def general_error(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.GENERAL, f"General exception: {detail}")


def snapshot_error(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.SNAPSHOT_ERROR, f"Snapshot failed: {detail}")


def merge_failed(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.MERGE_FAILED, f"Merge failed: {detail}")


def image_not_found(detail: str) -> JsonRpcError:
    return JsonRpcError(ErrorCode.IMAGE_NOT_FOUND,
                        f"Drive image file could not be found: {detail}")
