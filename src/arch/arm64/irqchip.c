// SPDX-License-Identifier: MIT
/* arm64 interrupt back ends: the vGIC comes with issue 11; none yet. */
#include "irq/irq_backend.h"

const struct kvmk_irqchip_ops *kvmk_arch_irqchip_ops(enum kvmkit_irqchip_mode mode)
{
	return NULL;
}
