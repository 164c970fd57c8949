// SPDX-License-Identifier: MIT
/*
 * vnet_drv: a minimal virtio 1.x driver for kvmkit's virtio-net and
 * virtio-vsock over virtio-mmio, run at CPL3 (vnet_abi.h says what the
 * host passes and reads back). Two queues of 16 entries; a CPL0 handler
 * counts interrupts after reading and acknowledging InterruptStatus.
 *
 * Net: checks the MAC and link status in the config space, sends one
 * frame (header and frame in two descriptors), then waits for the host's
 * VNET_P_GO (its frames are in the tap and the device has had nowhere to
 * put them), posts receive buffers and checks every frame: header,
 * num_buffers, length and bytes, gathered over merged buffers. Hostile
 * net: transmit chains the device must refuse with NEEDS_RESET, headers
 * that lie (the device must drop those frames and carry on), one good
 * frame, then a receive chain the device must refuse when the host's frame
 * comes. vsock: a stream connection to the host's listening port (REQUEST, then
 * its RESPONSE), a line out (RW) and the host's reply in.
 */
#include "guest.h"
#include "vnet_abi.h"

#define LAPIC_BASE GUEST_U64(0xfee00000)
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define IOAPIC_BASE GUEST_U64(0xfec00000)

#include "virtio_mmio_regs.h"

#define F_EVENT_IDX 29
#define F_MRG_RXBUF 15

#define D_NEXT 1
#define D_WRITE 2

#define QN 16
#define HDR 12
#define VEC 0x40
#define SPIN_LIMIT 200000000u

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vq {
	struct desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[QN], used_event */
	volatile uint8_t *used;
	uint16_t avail_idx, last_used;
};

static struct {
	uint64_t base, features;
	struct vq q[3];
	volatile uint32_t irqs, spurious, config_irqs;
} dev;

static uint8_t rings[3][3][4096] __attribute__((aligned(4096)));
static uint8_t rxbuf[QN][2048], txhdr[HDR], txframe[2048], frame[4096];
static const volatile uint64_t *params = (const volatile uint64_t *)VNET_PARAMS;
static volatile uint32_t *results = (volatile uint32_t *)VNET_RESULTS;

static uint32_t rd(uint32_t off)
{
	return mmio_read32(dev.base + off);
}

static void wr(uint32_t off, uint32_t v)
{
	mmio_write32(dev.base + off, v);
}

static int fail(int why, uint64_t a, uint64_t b)
{
	guest_printf("vnet_drv: check %d failed: 0x%llx 0x%llx\n", why, (unsigned long long)a,
		     (unsigned long long)b);
	report((uint32_t)why);
	report64(a);
	report64(b);
	return why;
}

#define CHECK(c, why, a, b)                           \
	do {                                          \
		if (!(c))                             \
			return fail((why), (a), (b)); \
	} while (0)

static void irq(unsigned int vector)
{
	uint32_t isr = rd(R_ISR);

	if (isr) {
		wr(R_ACK, isr);
		dev.irqs++;
		if (isr & 2)
			dev.config_irqs++;
	} else {
		dev.spurious++;
	}
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

static void ioapic_route(unsigned int pin, unsigned int vector, bool level)
{
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_BASE + 0x10, 0);
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_BASE + 0x10, vector | (level ? 1u << 15 : 0));
}

static bool has(unsigned int bit)
{
	return dev.features & (1ull << bit);
}

/* Reset, negotiate @want (VERSION_1 always), set up @nq queues. */
static int dev_init_nq(uint32_t device_id, uint64_t want, unsigned int nq)
{
	uint64_t offered;

	memset(rings, 0, sizeof(rings));
	wr(R_STATUS, 0);
	CHECK(rd(R_STATUS) == 0 && rd(R_MAGIC) == 0x74726976 && rd(R_VERSION) == 2, VNET_FAIL_INIT,
	      1, rd(R_STATUS));
	CHECK(rd(R_DEVICE_ID) == device_id, VNET_FAIL_INIT, 2, rd(R_DEVICE_ID));
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	wr(R_DEV_FEATURES_SEL, 0);
	offered = rd(R_DEV_FEATURES);
	wr(R_DEV_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(R_DEV_FEATURES) << 32;
	dev.features = (want | 1ull << 32) & offered;
	CHECK(dev.features == (want | 1ull << 32), VNET_FAIL_INIT, 3, offered);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, (uint32_t)dev.features);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, (uint32_t)(dev.features >> 32));
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	CHECK(rd(R_STATUS) & S_FEATURES_OK, VNET_FAIL_INIT, 4, rd(R_STATUS));
	for (unsigned int q = 0; q < nq; q++) {
		struct vq *v = &dev.q[q];

		v->desc = (struct desc *)rings[q][0];
		v->avail = (volatile uint16_t *)rings[q][1];
		v->used = rings[q][2];
		v->avail_idx = v->last_used = 0;
		wr(R_QUEUE_SEL, q);
		CHECK(rd(R_QUEUE_READY) == 0 && rd(R_QUEUE_NUM_MAX) >= QN, VNET_FAIL_INIT, 5, q);
		wr(R_QUEUE_NUM, QN);
		wr(R_DESC, (uint32_t)(uint64_t)v->desc);
		wr(R_DESC + 4, 0);
		wr(R_DRIVER, (uint32_t)(uint64_t)v->avail);
		wr(R_DRIVER + 4, 0);
		wr(R_DEVICE, (uint32_t)(uint64_t)v->used);
		wr(R_DEVICE + 4, 0);
		wr(R_QUEUE_READY, 1);
		CHECK(rd(R_QUEUE_READY) == 1, VNET_FAIL_INIT, 6, q);
	}
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return 0;
}

static int dev_init(uint32_t device_id, uint64_t want)
{
	return dev_init_nq(device_id, want, 2);
}

static void set_desc(struct desc *t, unsigned int i, const volatile void *buf, uint32_t len,
		     uint16_t flags)
{
	t[i].addr = (uint64_t)buf;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = (uint16_t)(i + 1);
}

/* Publishes @n heads at once; one notification if the device wants it. */
static void publish(unsigned int q, const uint16_t *heads, unsigned int n)
{
	struct vq *v = &dev.q[q];
	uint16_t old = v->avail_idx, now = (uint16_t)(old + n);

	for (unsigned int i = 0; i < n; i++)
		v->avail[2 + (old + i) % QN] = heads[i];
	if (has(F_EVENT_IDX))
		v->avail[2 + QN] = v->last_used; /* an interrupt for the next used entry */
	__atomic_store_n(&v->avail[1], now, __ATOMIC_SEQ_CST);
	v->avail_idx = now;
	if (has(F_EVENT_IDX)) {
		uint16_t ev = *(volatile uint16_t *)(v->used + 4 + 8 * QN);

		if ((uint16_t)(now - ev - 1) >= (uint16_t)(now - old))
			return;
	}
	wr(R_QUEUE_NOTIFY, q);
}

static void submit(unsigned int q, uint16_t head)
{
	publish(q, &head, 1);
}

/* Waits for the next used entry of queue @q. */
static int wait_used(unsigned int q, uint32_t *id, uint32_t *len)
{
	struct vq *v = &dev.q[q];
	unsigned int i;

	for (i = 0; i < SPIN_LIMIT && __atomic_load_n((volatile uint16_t *)(v->used + 2),
						      __ATOMIC_ACQUIRE) == v->last_used;
	     i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VNET_FAIL_TIMEOUT, q, v->last_used);
	*id = *(volatile uint32_t *)(v->used + 4 + 8 * (v->last_used % QN));
	*len = *(volatile uint32_t *)(v->used + 8 + 8 * (v->last_used % QN));
	v->last_used++;
	return 0;
}

static int wait_irqs(uint32_t want)
{
	unsigned int i;

	for (i = 0; i < SPIN_LIMIT && dev.irqs < want; i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VNET_FAIL_TIMEOUT, 0x100, dev.irqs);
	return 0;
}

/* One frame out: the header and the frame in two descriptors. */
static int send(uint32_t frame_len)
{
	uint32_t irqs = dev.irqs, id, len;
	int r;

	set_desc(dev.q[1].desc, 0, txhdr, HDR, D_NEXT);
	set_desc(dev.q[1].desc, 1, txframe, frame_len, 0);
	submit(1, 0);
	r = wait_used(1, &id, &len);
	if (!r)
		r = wait_irqs(irqs + 1);
	if (r)
		return r;
	CHECK(id == 0 && len == 0, VNET_FAIL_TX, id, len);
	results[VNET_R_TX]++;
	return 0;
}

static void mac_of(uint64_t v, uint8_t *out)
{
	for (unsigned int i = 0; i < 6; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

static int net_setup(void)
{
	uint8_t mac[6];
	int r = dev_init(1, params[VNET_P_FEATURES]);

	if (r)
		return r;
	mac_of(params[VNET_P_MAC], mac);
	for (unsigned int i = 0; i < 6; i++)
		CHECK(mmio_read8(dev.base + R_CONFIG + i) == mac[i], VNET_FAIL_CONFIG, i,
		      mmio_read8(dev.base + R_CONFIG + i));
	CHECK(mmio_read16(dev.base + R_CONFIG + 6) == 1, VNET_FAIL_CONFIG, 6,
	      mmio_read16(dev.base + R_CONFIG + 6));
	/* The guest's frame: broadcast from its MAC. */
	memset(txframe, 0xff, 6);
	memcpy(txframe + 6, mac, 6);
	txframe[12] = VNET_ETHERTYPE >> 8;
	txframe[13] = VNET_ETHERTYPE & 0xff;
	for (unsigned int j = 14; j < VNET_TX_LEN; j++)
		txframe[j] = VNET_TX_BYTE(j);
	memset(txhdr, 0, HDR);
	return 0;
}

/* Frame @i from the host, gathered from its buffers, checked. */
static int receive(unsigned int i, uint32_t bufsz)
{
	uint8_t mac[6], host[6];
	uint32_t id, len, got = 0, nbuf;
	int r = wait_used(0, &id, &len);

	if (r)
		return r;
	CHECK(id < QN && len >= HDR && len <= bufsz, VNET_FAIL_RX, 1, (uint64_t)id << 32 | len);
	nbuf = rxbuf[id][10] | rxbuf[id][11] << 8;
	CHECK(rxbuf[id][0] == 0 && rxbuf[id][1] == 0, VNET_FAIL_RX, 2, rxbuf[id][0]);
	CHECK(nbuf >= 1 && (has(F_MRG_RXBUF) || nbuf == 1), VNET_FAIL_RX, 3, nbuf);
	memcpy(frame, rxbuf[id] + HDR, len - HDR);
	got = len - HDR;
	for (uint32_t b = 1; b < nbuf; b++) {
		r = wait_used(0, &id, &len);
		if (r)
			return r;
		CHECK(id < QN && len <= bufsz && got + len <= sizeof(frame), VNET_FAIL_RX, 4,
		      (uint64_t)id << 32 | len);
		memcpy(frame + got, rxbuf[id], len);
		got += len;
	}
	results[VNET_R_RX_BUFS] += nbuf;
	CHECK(got == VNET_RX_LEN(i), VNET_FAIL_RX, 5, got);
	mac_of(params[VNET_P_MAC], mac);
	mac_of(VNET_HOST_MAC, host);
	CHECK(!memcmp(frame, mac, 6) && !memcmp(frame + 6, host, 6), VNET_FAIL_RX, 6, i);
	CHECK(frame[12] == VNET_ETHERTYPE >> 8 && frame[13] == (VNET_ETHERTYPE & 0xff),
	      VNET_FAIL_RX, 7, i);
	for (uint32_t j = 14; j < got; j++)
		CHECK(frame[j] == VNET_RX_BYTE(i, j), VNET_FAIL_RX, 8, (uint64_t)i << 32 | j);
	results[VNET_R_RX]++;
	return 0;
}

static int net(void)
{
	uint32_t bufsz = (uint32_t)params[VNET_P_RXBUF], irqs;
	uint16_t heads[QN];
	unsigned int i;
	int r = net_setup();

	if (r)
		return r;
	r = send(VNET_TX_LEN);
	if (r)
		return r;
	/* The host fills the tap while no receive buffer exists. */
	results[VNET_R_STAGE] = 1;
	for (i = 0; i < SPIN_LIMIT && !params[VNET_P_GO]; i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VNET_FAIL_TIMEOUT, 0x200, 0);
	CHECK(bufsz >= HDR && bufsz <= sizeof(rxbuf[0]), VNET_FAIL_PARAMS, bufsz, 0);
	for (i = 0; i < QN; i++) {
		set_desc(dev.q[0].desc, i, rxbuf[i], bufsz, D_WRITE);
		heads[i] = (uint16_t)i;
	}
	irqs = dev.irqs;
	publish(0, heads, QN);
	for (i = 0; i < params[VNET_P_FRAMES]; i++) {
		r = receive(i, bufsz);
		if (r)
			return r;
	}
	return wait_irqs(irqs + 1);
}

/* A transmit chain the device must refuse with NEEDS_RESET and a config
 * interrupt; then the device is set up again. */
static int expect_reset(unsigned int c)
{
	uint32_t cfg = dev.config_irqs;
	unsigned int i;

	if (c == 0) { /* a device-writable buffer in a transmit chain */
		set_desc(dev.q[1].desc, 0, txhdr, HDR, D_NEXT);
		set_desc(dev.q[1].desc, 1, txframe, VNET_TX_LEN, D_WRITE);
	} else { /* shorter than the header */
		set_desc(dev.q[1].desc, 0, txhdr, HDR - 4, 0);
	}
	submit(1, 0);
	for (i = 0; i < SPIN_LIMIT && (!(rd(R_STATUS) & S_NEEDS_RESET) || dev.config_irqs == cfg);
	     i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VNET_FAIL_HOSTILE, c, rd(R_STATUS));
	results[VNET_R_HOSTILE]++;
	return net_setup();
}

/* A receive chain with a device-readable buffer: the device finds it when
 * the host's frame comes, and must set NEEDS_RESET. */
static int expect_rx_reset(void)
{
	uint32_t cfg = dev.config_irqs;
	unsigned int i;

	set_desc(dev.q[0].desc, 0, rxbuf[0], 64, D_NEXT);
	set_desc(dev.q[0].desc, 1, rxbuf[1], 1526, D_WRITE);
	submit(0, 0);
	for (i = 0; i < SPIN_LIMIT && (!(rd(R_STATUS) & S_NEEDS_RESET) || dev.config_irqs == cfg);
	     i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VNET_FAIL_HOSTILE, 2, rd(R_STATUS));
	results[VNET_R_HOSTILE]++;
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static int net_hostile(void)
{
	int r = net_setup();

	for (unsigned int c = 0; !r && c < 2; c++)
		r = expect_reset(c);
	if (r)
		return r;
	/* Headers that lie: each frame is dropped, the chain comes back. */
	txhdr[0] = 1; /* NEEDS_CSUM */
	txhdr[1] = 1; /* GSO TCPv4 */
	put16(txhdr + 2, 5000); /* hdr_len past the 200-byte frame */
	put16(txhdr + 4, 1000);
	put16(txhdr + 6, 34);
	put16(txhdr + 8, 16);
	r = send(VNET_TX_LEN);
	memset(txhdr, 0, HDR);
	txhdr[0] = 1;
	put16(txhdr + 6, VNET_TX_LEN - 10); /* the checksum past the frame */
	put16(txhdr + 8, 16);
	if (!r)
		r = send(VNET_TX_LEN);
	memset(txhdr, 0, HDR);
	txhdr[0] = 2; /* DATA_VALID: the device's flag */
	if (!r)
		r = send(VNET_TX_LEN);
	memset(txhdr, 0, HDR);
	/* And the device still works. */
	if (!r)
		r = send(VNET_TX_LEN);
	return r ? r : expect_rx_reset();
}

/* struct virtio_vsock_hdr (virtio 1.x 5.10.6), 44 bytes, little-endian. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

#define VSOCK_TYPE_STREAM 1
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RW 5
#define VSOCK_HOST_CID 2

static struct vsock_hdr vtx;
static uint8_t vevent[2][8];

static int vsock_send(uint16_t op, const char *data, uint32_t len)
{
	uint32_t id, l;

	vtx = (struct vsock_hdr){ params[VNET_P_CID],
				  VSOCK_HOST_CID,
				  VNET_VSOCK_GUEST_PORT,
				  (uint32_t)params[VNET_P_PORT],
				  len,
				  VSOCK_TYPE_STREAM,
				  op,
				  0,
				  65536,
				  0 };
	set_desc(dev.q[1].desc, 0, &vtx, sizeof(vtx), len ? D_NEXT : 0);
	if (len)
		set_desc(dev.q[1].desc, 1, data, len, 0);
	submit(1, 0);
	if (wait_used(1, &id, &l))
		return VNET_FAIL_TIMEOUT;
	results[VNET_R_TX]++;
	return 0;
}

/* The next packet for our connection with operation @op (credit updates
 * and the like on the way are passed over); its buffer is given back. */
static int vsock_recv(uint16_t op, uint8_t **payload, uint32_t *plen)
{
	for (unsigned int n = 0; n < 8; n++) {
		uint32_t id, len;
		const struct vsock_hdr *h;

		if (wait_used(0, &id, &len))
			return VNET_FAIL_TIMEOUT;
		CHECK(id < QN && len >= sizeof(*h) && len <= sizeof(rxbuf[0]), VNET_FAIL_VSOCK, 1,
		      (uint64_t)id << 32 | len);
		h = (const struct vsock_hdr *)rxbuf[id];
		CHECK(h->src_cid == VSOCK_HOST_CID && h->dst_cid == params[VNET_P_CID] &&
			      h->dst_port == VNET_VSOCK_GUEST_PORT && h->len == len - sizeof(*h),
		      VNET_FAIL_VSOCK, 2, h->op);
		submit(0, (uint16_t)id); /* the buffer goes back to the device */
		if (h->op == op) {
			*payload = rxbuf[id] + sizeof(*h);
			*plen = h->len;
			return 0;
		}
	}
	return fail(VNET_FAIL_VSOCK, 3, op);
}

static int vsock(void)
{
	static const char ping[] = VNET_VSOCK_PING, pong[] = VNET_VSOCK_PONG;
	uint16_t heads[8];
	uint8_t *data;
	uint32_t cid_lo, cid_hi, len;
	int r = dev_init_nq(19, params[VNET_P_FEATURES], 3);

	if (r)
		return r;
	cid_lo = rd(R_CONFIG);
	cid_hi = rd(R_CONFIG + 4);
	CHECK(((uint64_t)cid_hi << 32 | cid_lo) == params[VNET_P_CID], VNET_FAIL_VSOCK, 4, cid_lo);
	for (unsigned int i = 0; i < 8; i++) {
		set_desc(dev.q[0].desc, i, rxbuf[i], sizeof(rxbuf[0]), D_WRITE);
		heads[i] = (uint16_t)i;
	}
	publish(0, heads, 8);
	for (unsigned int i = 0; i < 2; i++) {
		set_desc(dev.q[2].desc, i, vevent[i], sizeof(vevent[i]), D_WRITE);
		heads[i] = (uint16_t)i;
	}
	publish(2, heads, 2);
	r = vsock_send(VSOCK_OP_REQUEST, 0, 0);
	if (!r)
		r = vsock_recv(VSOCK_OP_RESPONSE, &data, &len);
	if (!r)
		r = vsock_send(VSOCK_OP_RW, ping, sizeof(ping) - 1);
	if (!r)
		r = vsock_recv(VSOCK_OP_RW, &data, &len);
	if (r)
		return r;
	results[VNET_R_IN_LEN] = len;
	CHECK(len == sizeof(pong) - 1 && !memcmp(data, pong, len), VNET_FAIL_VSOCK, 5, len);
	results[VNET_R_RX]++;
	return dev.irqs ? 0 : fail(VNET_FAIL_VSOCK, 6, 0);
}

static int run(void)
{
	int r;

	if (params[VNET_P_MAGIC] != VNET_MAGIC)
		return fail(VNET_FAIL_PARAMS, params[VNET_P_MAGIC], VNET_MAGIC);
	dev.base = params[VNET_P_BASE];
	/* The PIC masked (pins below 16 reach it too), the LAPIC on. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);
	mmio_write32(LAPIC_BASE + LAPIC_TPR, 0);
	guest_irq_install(VEC, irq);
	ioapic_route((unsigned int)params[VNET_P_PIN], VEC, params[VNET_P_LEVEL]);
	local_irq_enable();
	switch (params[VNET_P_MODE]) {
	case VNET_NET:
		r = net();
		break;
	case VNET_NET_HOSTILE:
		r = net_hostile();
		break;
	case VNET_VSOCK:
		r = vsock();
		break;
	case VNET_NET_HOSTILE_VHOST:
		r = net_setup();
		if (!r)
			r = expect_reset(0);
		if (!r)
			r = send(VNET_TX_LEN);
		break;
	default:
		r = fail(VNET_FAIL_PARAMS, params[VNET_P_MODE], 0);
		break;
	}
	local_irq_disable();
	results[VNET_R_IRQS] = dev.irqs;
	results[VNET_R_SPURIOUS] = dev.spurious;
	results[VNET_R_CONFIG_IRQS] = dev.config_irqs;
	if (r)
		return r;
	results[VNET_R_DONE] = VNET_MAGIC;
	return 0;
}

int guest_main(unsigned int id, unsigned int count)
{
	if (id)
		return 0;
	return run();
}
