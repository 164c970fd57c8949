// SPDX-License-Identifier: MIT
/*
 * io_sizes: port and MMIO accesses of every width at GUEST_TEST_PORT and
 * GUEST_TEST_MMIO, each read reported; see guest_abi.h for the sequence.
 */
#include "guest.h"

int guest_main(unsigned int id, unsigned int count)
{
	if (id != 0)
		return 0;

	outb(GUEST_TEST_PORT, GUEST_IO_PIO_W8);
	outw(GUEST_TEST_PORT, GUEST_IO_PIO_W16);
	outl(GUEST_TEST_PORT, GUEST_IO_PIO_W32);
	report(inb(GUEST_TEST_PORT));
	report(inw(GUEST_TEST_PORT));
	report(inl(GUEST_TEST_PORT));

	mmio_write8(GUEST_TEST_MMIO, GUEST_IO_MMIO_W8);
	mmio_write16(GUEST_TEST_MMIO, GUEST_IO_MMIO_W16);
	mmio_write32(GUEST_TEST_MMIO, GUEST_IO_MMIO_W32);
	mmio_write64(GUEST_TEST_MMIO, GUEST_IO_MMIO_W64);
	report(mmio_read8(GUEST_TEST_MMIO));
	report(mmio_read16(GUEST_TEST_MMIO));
	report(mmio_read32(GUEST_TEST_MMIO));
	report64(mmio_read64(GUEST_TEST_MMIO));

	return GUEST_STATUS_OK;
}
