/* SPDX-License-Identifier: MIT */
/* kvmkit: one include for the whole public API. */
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
#include <kvmkit/devices.h>
#include <kvmkit/machine.h>

#define KVMKIT_VERSION_MAJOR 0
#define KVMKIT_VERSION_MINOR 1
#define KVMKIT_VERSION_PATCH 0

const char *kvmkit_version(void);

#endif
