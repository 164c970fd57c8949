/* SPDX-License-Identifier: MIT */
/*
 * kvmkit: one include for the whole public API.
 *
 * Each header's opening comment gives its threading rules and the lifetime
 * of what its calls return. In short: objects belong to whoever created
 * them (a VM owns its vCPUs, buses, memory it allocated and irqchip; a
 * machine owns its VM and devices) and what a getter returns lives as long
 * as its owner; errors are per thread; nothing that waits for the vCPU
 * threads may be called on one (-EDEADLK), and devices stop a VM with
 * kvmkit_vm_request_stop(). kvmkit_version() returns a static string.
 */
#ifndef KVMKIT_H
#define KVMKIT_H

#include <kvmkit/error.h>
#include <kvmkit/log.h>
#include <kvmkit/system.h>
#include <kvmkit/bus.h>
#include <kvmkit/vm.h>
#include <kvmkit/dirty.h>
#include <kvmkit/vcpu.h>
#include <kvmkit/irq.h>
#include <kvmkit/loader.h>
#include <kvmkit/linux_boot.h>
#include <kvmkit/devices.h>
#include <kvmkit/virtio.h>
#include <kvmkit/virtio_io.h>
#include <kvmkit/machine.h>
#include <kvmkit/api.h>
#include <kvmkit/snapshot.h>
#include <kvmkit/migrate.h>
#include <kvmkit/arm64.h>

#include <kvmkit/version.h> /* generated from meson.build's project version */

/* The library's version at run time (KVMKIT_VERSION_STRING is the headers'). */
const char *kvmkit_version(void);

#endif
