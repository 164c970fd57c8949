// SPDX-License-Identifier: MIT
/*
 * virtio-net and virtio-vsock driven by a guest driver (tests/guest/
 * progs/vnet_drv.c). Net: over a tap this test creates (root and
 * /dev/net/tun needed, else a skip with the reason) and reads and writes
 * through an AF_PACKET socket on the tap's interface: the guest's frame
 * must come out as sent, the host's frames must reach the guest (checked
 * byte by byte in the guest) after having waited in the tap while the guest
 * had no receive buffers (backpressure: the device read one packet, then
 * left the tap alone), with merged receive buffers or without, and
 * interrupt counts that agree on both sides. A hostile guest's malformed
 * transmit chains end in NEEDS_RESET, its lying headers in dropped frames
 * that never reach the tap. vhost-net: the same exchange with the kernel
 * moving the packets (skipped where /dev/vhost-net is missing; it runs in
 * the emulated x86 host with --module vhost_net). vsock: a connection
 * from the guest to a host AF_VSOCK listener through vhost-vsock (there
 * too, --module vhost_vsock).
 */
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>

#include "kvm_test.h"
#include "vnet_abi.h"
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#define GUEST_MAC 0x554433221102ull /* 02:11:22:33:44:55 */
#define FRAMES 4 /* the last one sent while the device waits for buffers */
#define PEER_WAIT_MS 60000 /* bounds a wait that should end: no timing assert */

struct tap {
	char name[IFNAMSIZ];
	int pkt; /* AF_PACKET on the interface */
	int ifindex;
};

struct run {
	enum kvmkit_irqchip_mode mode;
	enum kvmkit_virtio_trigger trigger;
	int guest_mode;
	uint64_t features;
	uint32_t rxbuf;
	bool vhost;
	bool kernel; /* vhost-net is expected to move the packets */
	/* out */
	uint32_t res[VNET_R_DONE + 1];
	struct kvmkit_virtio_stats vst;
	struct kvmkit_virtio_net_stats nst;
	struct kvmkit_virtio_net_stats at_stall, at_go; /* as the peer saw them */
	unsigned int peer_frames; /* guest frames the peer saw, all as expected */
	char peer_err[160];
};

struct peer {
	struct run *r;
	struct tap *tap;
	struct kvmkit_vm *vm;
	struct kvmkit_virtio *dev;
};

static void mac_bytes(uint64_t v, uint8_t *out)
{
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

static int if_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (s >= 0 && !ioctl(s, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (s >= 0)
		close(s);
	return r;
}

static int tap_persist(const char *name, int on)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), r = -1;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (fd >= 0 && !ioctl(fd, TUNSETIFF, &ifr))
		r = ioctl(fd, TUNSETPERSIST, on);
	if (fd >= 0)
		close(fd);
	return r;
}

/* A persistent tap kvmkit attaches to, up, IPv6 off (no stray frames), and
 * a packet socket on it. Skips the test where that cannot be had. */
static void tap_create(struct tap *t)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	char path[128];
	FILE *f;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK)) {
		printf("skipped: a tap needs root and /dev/net/tun\n");
		exit(TEST_SKIP);
	}
	snprintf(t->name, sizeof(t->name), "kvmkt%d", (int)getpid() % 100000);
	assert_int_equal(tap_persist(t->name, 1), 0);
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", t->name);
	f = fopen(path, "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	assert_int_equal(if_up(t->name), 0);
	t->ifindex = (int)if_nametoindex(t->name);
	assert_true(t->ifindex > 0);
	t->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(t->pkt >= 0);
	sll.sll_ifindex = t->ifindex;
	assert_int_equal(bind(t->pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
}

static void tap_remove(struct tap *t)
{
	close(t->pkt);
	tap_persist(t->name, 0);
}

/* The next frame of ours the guest sent: its length, 0 when none came
 * within @ms (-1: wait the whole bound). */
static ssize_t peer_recv(struct tap *t, uint8_t *buf, size_t cap, int ms)
{
	for (;;) {
		struct pollfd p = { .fd = t->pkt, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (poll(&p, 1, ms < 0 ? PEER_WAIT_MS : ms) <= 0)
			return 0;
		n = recvfrom(t->pkt, buf, cap, 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return 0;
		/* Our own sends show up as outgoing; other protocols are not
		 * the guest's. */
		if (from.sll_pkttype == PACKET_OUTGOING || n < 14 ||
		    buf[12] != (VNET_ETHERTYPE >> 8) || buf[13] != (VNET_ETHERTYPE & 0xff))
			continue;
		return n;
	}
}

static bool guest_frame_ok(struct run *r, const uint8_t *f, ssize_t n)
{
	uint8_t mac[6];

	mac_bytes(GUEST_MAC, mac);
	if (n != VNET_TX_LEN) {
		snprintf(r->peer_err, sizeof(r->peer_err), "guest frame of %zd bytes", n);
		return false;
	}
	for (int i = 0; i < 6; i++)
		if (f[i] != 0xff || f[6 + i] != mac[i]) {
			snprintf(r->peer_err, sizeof(r->peer_err), "guest frame address byte %d",
				 i);
			return false;
		}
	for (int j = 14; j < n; j++)
		if (f[j] != VNET_TX_BYTE(j)) {
			snprintf(r->peer_err, sizeof(r->peer_err), "guest frame byte %d", j);
			return false;
		}
	return true;
}

static void peer_send(struct tap *t, unsigned int i)
{
	static uint8_t f[2048];
	struct sockaddr_ll to = { .sll_family = AF_PACKET,
				  .sll_ifindex = t->ifindex,
				  .sll_halen = 6 };
	size_t len = VNET_RX_LEN(i);

	mac_bytes(GUEST_MAC, f);
	mac_bytes(VNET_HOST_MAC, f + 6);
	f[12] = VNET_ETHERTYPE >> 8;
	f[13] = VNET_ETHERTYPE & 0xff;
	for (size_t j = 14; j < len; j++)
		f[j] = VNET_RX_BYTE(i, j);
	memcpy(to.sll_addr, f, 6);
	assert_int_equal(sendto(t->pkt, f, len, 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)len);
}

/* The other end of the tap while the guest runs. */
static void *peer_thread(void *arg)
{
	struct peer *p = arg;
	struct run *r = p->r;
	static uint8_t buf[4096];
	uint64_t go = 1;
	ssize_t n;

	n = peer_recv(p->tap, buf, sizeof(buf), -1);
	if (!guest_frame_ok(r, buf, n))
		return NULL;
	r->peer_frames++;
	if (r->guest_mode == VNET_NET_HOSTILE_VHOST)
		return NULL;
	if (r->guest_mode == VNET_NET_HOSTILE) {
		/* For the guest's malformed receive chain to be found. */
		peer_send(p->tap, 0);
		return NULL;
	}
	for (unsigned int i = 0; i < FRAMES - 1; i++)
		peer_send(p->tap, i);
	/* The guest has no receive buffer yet: the device must take one
	 * packet, find nowhere to put it, and stop reading the tap. */
	for (int i = 0; !r->kernel && i < PEER_WAIT_MS; i++) {
		kvmkit_virtio_net_stats(p->dev, &r->at_stall);
		if (r->at_stall.rx_stalls)
			break;
		usleep(1000);
	}
	/* One more frame while it waits: it must not wake the device (a tap
	 * left in the epoll set would, over and over). The pause is only a
	 * window for that fault to show; the check does not depend on it. */
	peer_send(p->tap, FRAMES - 1);
	usleep(50000);
	if (!r->kernel)
		kvmkit_virtio_net_stats(p->dev, &r->at_go);
	kvmkit_vm_write(p->vm, VNET_PARAMS + 8 * VNET_P_GO, &go, sizeof(go));
	return NULL;
}

static struct kvmkit_machine *make_machine(struct run *r)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;

	guest_config(&cfg, "vnet_drv", 1, 64 << 20);
	cfg.irqchip_mode = r->mode;
	m = machine_from(&cfg);
	return m;
}

static void set_params(struct kvmkit_machine *m, struct run *r, struct kvmkit_virtio *dev)
{
	struct kvmkit_virtio_info info;
	uint64_t p[VNET_P_GO + 1] = { 0 };

	kvmkit_virtio_get_info(dev, &info);
	p[VNET_P_MAGIC] = VNET_MAGIC;
	p[VNET_P_MODE] = (uint64_t)r->guest_mode;
	p[VNET_P_LEVEL] = r->trigger == KVMKIT_VIRTIO_IRQ_LEVEL;
	p[VNET_P_BASE] = info.base;
	p[VNET_P_PIN] = info.gsi;
	p[VNET_P_FEATURES] = r->features;
	p[VNET_P_MAC] = GUEST_MAC;
	p[VNET_P_FRAMES] = FRAMES;
	p[VNET_P_RXBUF] = r->rxbuf;
	assert_int_equal(kvmkit_vm_write(kvmkit_machine_vm(m), VNET_PARAMS, p, sizeof(p)), 0);
}

static void collect(struct kvmkit_machine *m, struct run *r)
{
	char out[512];
	size_t n;

	assert_int_equal(kvmkit_vm_read(kvmkit_machine_vm(m), VNET_RESULTS, r->res, sizeof(r->res)),
			 0);
	/* The guest's own words when a check failed. */
	n = kvmkit_uart_output(kvmkit_machine_uart(m), out, sizeof(out) - 1);
	out[n] = 0;
	if (n)
		printf("guest: %s", out);
}

static void check_stop(const struct run *r, const struct kvmkit_stop_info *info)
{
	if (info->reason != KVMKIT_STOP_GUEST_EXIT || info->status != 0)
		fail_msg("guest stopped with reason %d status %d (a VNET_FAIL_* check)",
			 (int)info->reason, info->status);
	assert_int_equal(r->res[VNET_R_DONE], VNET_MAGIC);
}

/* Interrupts: the guest took what kvmkit signalled, none found nothing
 * (with vhost the kernel signals and kvmkit counts none). KVM-PVM's early
 * level resample: see test_virtio.c. */
static void check_irqs(const struct run *r)
{
	if (r->trigger == KVMKIT_VIRTIO_IRQ_LEVEL && host_is_kvm_pvm()) {
		assert_true(r->res[VNET_R_SPURIOUS] <= r->res[VNET_R_IRQS]);
		return;
	}
	assert_int_equal(r->res[VNET_R_SPURIOUS], 0);
	if (!r->kernel)
		assert_int_equal(r->vst.interrupts, r->res[VNET_R_IRQS]);
}

static void net_run(struct run *r)
{
	struct kvmkit_virtio_net_config nc = { .vhost = r->vhost };
	struct kvmkit_virtio_mmio_config vc;
	struct kvmkit_virtio *dev = NULL;
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	struct tap tap;
	struct peer peer;
	pthread_t th;

	require_kvm();
	if (r->vhost && access("/dev/vhost-net", R_OK | W_OK)) {
		printf("skipped: no /dev/vhost-net here (the emulated x86 host has it with "
		       "--module vhost_net)\n");
		if (test_only_mode)
			exit(TEST_SKIP);
		skip();
	}
	tap_create(&tap);
	m = make_machine(r);
	kvmkit_virtio_mmio_config_init(&vc);
	vc.trigger = r->trigger;
	nc.tap = tap.name;
	mac_bytes(GUEST_MAC, nc.mac);
	if (kvmkit_virtio_net_create(kvmkit_machine_vm(m), &vc, &nc, &dev))
		fail_msg("virtio-net: %s", kvmkit_strerror());
	set_params(m, r, dev);
	peer = (struct peer){ r, &tap, kvmkit_machine_vm(m), dev };
	assert_int_equal(pthread_create(&th, NULL, peer_thread, &peer), 0);
	run_to_stop(m, &info);
	pthread_join(th, NULL);
	collect(m, r);
	if (r->guest_mode == VNET_NET_HOSTILE || r->guest_mode == VNET_NET_HOSTILE_VHOST) {
		static uint8_t buf[4096];

		/* Nothing after the good frame: the lies never left. */
		if (peer_recv(&tap, buf, sizeof(buf), 200) > 0)
			snprintf(r->peer_err, sizeof(r->peer_err),
				 "a dropped frame reached the tap");
	}
	kvmkit_virtio_get_stats(dev, &r->vst);
	kvmkit_virtio_net_stats(dev, &r->nst);
	kvmkit_virtio_destroy(dev);
	kvmkit_machine_destroy(m);
	tap_remove(&tap);
	printf("%s/%s%s%s: guest irqs %u (+%u spurious, %u config), tx %u, rx %u frames in %u "
	       "buffers; device: tx %llu (%llu dropped), rx %llu (%llu dropped), %llu stalls, "
	       "%llu tap reads (%llu/%llu at stall/GO), %llu wakeups (%llu/%llu), offloads 0x%x, "
	       "%llu signals\n",
	       kvmkit_irqchip_mode_name(r->mode),
	       r->trigger == KVMKIT_VIRTIO_IRQ_LEVEL ? "level" : "edge", r->vhost ? " vhost" : "",
	       r->guest_mode == VNET_NET_HOSTILE ? " hostile" : "", r->res[VNET_R_IRQS],
	       r->res[VNET_R_SPURIOUS], r->res[VNET_R_CONFIG_IRQS], r->res[VNET_R_TX],
	       r->res[VNET_R_RX], r->res[VNET_R_RX_BUFS], (unsigned long long)r->nst.tx_packets,
	       (unsigned long long)r->nst.tx_dropped, (unsigned long long)r->nst.rx_packets,
	       (unsigned long long)r->nst.rx_dropped, (unsigned long long)r->nst.rx_stalls,
	       (unsigned long long)r->nst.tap_reads, (unsigned long long)r->at_stall.tap_reads,
	       (unsigned long long)r->at_go.tap_reads, (unsigned long long)r->nst.tap_wakeups,
	       (unsigned long long)r->at_stall.tap_wakeups,
	       (unsigned long long)r->at_go.tap_wakeups, r->nst.offloads,
	       (unsigned long long)r->vst.interrupts);
	if (r->peer_err[0])
		fail_msg("tap peer: %s", r->peer_err);
	check_stop(r, &info);
}

#define F(bit) (1ull << (bit))
#define BASIC (F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS))

/* What every good exchange shows: the guest's frame out as sent, the
 * host's four in (the guest checked each byte), one packet read from the
 * tap while the guest had no buffers and the tap then left alone. */
static void check_exchange(const struct run *r, unsigned int bufs)
{
	assert_int_equal(r->peer_frames, 1);
	assert_int_equal(r->res[VNET_R_TX], 1);
	assert_int_equal(r->res[VNET_R_RX], FRAMES);
	assert_int_equal(r->res[VNET_R_RX_BUFS], bufs);
	assert_int_equal(r->nst.vhost_running, r->kernel);
	if (r->kernel) {
		assert_int_equal(r->nst.tx_packets, 0); /* the kernel's, not counted */
	} else {
		assert_int_equal(r->nst.tx_packets, 1);
		assert_int_equal(r->nst.tx_bytes, VNET_TX_LEN);
		assert_int_equal(r->nst.rx_packets, FRAMES);
		assert_int_equal(r->nst.rx_dropped, 0);
		assert_true(r->nst.rx_stalls >= 1);
		/* Stalled with one packet read; then nothing until GO. */
		assert_int_equal(r->at_stall.rx_stalls, 1);
		assert_int_equal(r->at_go.tap_reads, r->at_stall.tap_reads);
		assert_int_equal(r->at_go.tap_wakeups, r->at_stall.tap_wakeups);
		assert_int_equal(r->at_go.rx_packets, 0);
	}
	assert_int_equal(r->vst.malformed, 0);
	check_irqs(r);
}

/* Merged receive buffers of 256 bytes: frames of 300, 550, 800 and 1050
 * bytes (plus the header) take 2, 3, 4 and 5. */
static void test_net_mrg_kernel_edge(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL,
			 .features = BASIC | F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_RING_F_EVENT_IDX),
			 .rxbuf = 256 };

	net_run(&r);
	check_exchange(&r, 14);
}

/* One buffer per frame, no event index, level interrupts, split irqchip. */
static void test_net_plain_split_level(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_SPLIT,
			 .trigger = KVMKIT_VIRTIO_IRQ_LEVEL,
			 .features = BASIC,
			 .rxbuf = 1526 };

	net_run(&r);
	check_exchange(&r, 4);
}

/* Checksum and TSO offloads negotiated: the tap gets the matching
 * TUNSETOFFLOAD, the exchange is unchanged. */
static void test_net_offloads(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL,
			 .features = BASIC | F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) |
				     F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_HOST_TSO4) |
				     F(VIRTIO_NET_F_MRG_RXBUF),
			 .rxbuf = 2048 };

	net_run(&r);
	check_exchange(&r, 4);
	assert_int_equal(r.nst.offloads, TUN_F_CSUM | TUN_F_TSO4);
}

/* Two malformed transmit chains (a device-writable buffer; shorter than
 * the header): NEEDS_RESET each. Three lying headers (a GSO header length
 * past the frame; a checksum past the frame; the device's DATA_VALID
 * flag): dropped, the chains returned, the device carries on; only the
 * good frame after them reaches the tap. Then a receive chain with a
 * device-readable buffer: NEEDS_RESET when the host's frame comes. */
static void test_net_hostile(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL,
			 .guest_mode = VNET_NET_HOSTILE,
			 .features = BASIC | F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) |
				     F(VIRTIO_RING_F_EVENT_IDX),
			 .rxbuf = 1526 };

	net_run(&r);
	assert_int_equal(r.res[VNET_R_HOSTILE], 3);
	assert_int_equal(r.vst.malformed, 3);
	assert_int_equal(r.res[VNET_R_CONFIG_IRQS], 3);
	assert_int_equal(r.nst.rx_packets, 0);
	assert_int_equal(r.res[VNET_R_TX], 4);
	assert_int_equal(r.nst.tx_dropped, 3);
	assert_int_equal(r.nst.tx_packets, 1);
	assert_int_equal(r.peer_frames, 1);
	check_irqs(&r);
}

/* vhost-net: the kernel moves the packets and signals the irqfd; the
 * guest's handler still finds InterruptStatus set. */
static void test_vhost_net_kernel_edge(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL,
			 .vhost = true,
			 .kernel = true,
			 .features = BASIC | F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_RING_F_EVENT_IDX),
			 .rxbuf = 256 };

	net_run(&r);
	check_exchange(&r, 14);
}

static void test_vhost_net_split_level(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_SPLIT,
			 .trigger = KVMKIT_VIRTIO_IRQ_LEVEL,
			 .vhost = true,
			 .kernel = true,
			 .features = BASIC | F(VIRTIO_NET_F_MRG_RXBUF),
			 .rxbuf = 1526 };

	net_run(&r);
	check_exchange(&r, 4);
}

/* A transmit chain with a device-writable buffer under vhost-net: the
 * kernel reports it on the vring error eventfd, kvmkit sets NEEDS_RESET;
 * after the driver's reset the kernel moves a good frame again. */
static void test_vhost_net_hostile(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL,
			 .guest_mode = VNET_NET_HOSTILE_VHOST,
			 .vhost = true,
			 .kernel = true,
			 .features = BASIC | F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_RING_F_EVENT_IDX),
			 .rxbuf = 1526 };

	net_run(&r);
	assert_int_equal(r.res[VNET_R_HOSTILE], 1);
	assert_int_equal(r.res[VNET_R_CONFIG_IRQS], 1);
	assert_int_equal(r.vst.malformed, 1);
	assert_int_equal(r.res[VNET_R_TX], 1);
	assert_int_equal(r.peer_frames, 1);
	assert_true(r.nst.vhost_running);
	check_irqs(&r);
}

/* A driver without MRG_RXBUF keeps kvmkit's path even with vhost (older
 * vhost-net leaves num_buffers 0 there; the guest checks it is 1). */
static void test_vhost_net_no_mrg(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL,
			 .vhost = true,
			 .features = BASIC | F(VIRTIO_RING_F_EVENT_IDX),
			 .rxbuf = 1526 };

	net_run(&r);
	check_exchange(&r, 4);
}

/* A tap that cannot be opened: the error names it. */
static void test_net_bad_tap(void **state)
{
	struct kvmkit_virtio_net_config nc = { .tap = "lo" };
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL };
	struct kvmkit_virtio *dev = NULL;
	struct kvmkit_machine *m;

	require_kvm();
	m = make_machine(&r);
	assert_true(kvmkit_virtio_net_create(kvmkit_machine_vm(m), NULL, &nc, &dev) < 0);
	printf("tap lo: %s\n", kvmkit_strerror());
	assert_non_null(strstr(kvmkit_strerror(), "tap lo"));
	nc.tap = "a-name-longer-than-15";
	assert_int_equal(kvmkit_virtio_net_create(kvmkit_machine_vm(m), NULL, &nc, &dev), -EINVAL);
	kvmkit_machine_destroy(m);
}

struct vsock_peer {
	int lfd;
	bool got_ping;
	char err[128];
};

/* The host's end: accept the guest's connection, read its line, reply. */
static void *vsock_thread(void *arg)
{
	struct vsock_peer *vp = arg;
	struct pollfd p = { .fd = vp->lfd, .events = POLLIN };
	char buf[64];
	size_t got = 0;
	int c;

	if (poll(&p, 1, PEER_WAIT_MS) <= 0) {
		snprintf(vp->err, sizeof(vp->err), "no connection from the guest");
		return NULL;
	}
	c = accept4(vp->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		snprintf(vp->err, sizeof(vp->err), "accept: %s", strerror(errno));
		return NULL;
	}
	while (got < strlen(VNET_VSOCK_PING)) {
		struct pollfd q = { .fd = c, .events = POLLIN };
		ssize_t n;

		if (poll(&q, 1, PEER_WAIT_MS) <= 0)
			break;
		n = read(c, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	vp->got_ping = got == strlen(VNET_VSOCK_PING) && !memcmp(buf, VNET_VSOCK_PING, got);
	if (!vp->got_ping)
		snprintf(vp->err, sizeof(vp->err), "read %zu bytes, not the guest's line", got);
	else if (write(c, VNET_VSOCK_PONG, strlen(VNET_VSOCK_PONG)) !=
		 (ssize_t)strlen(VNET_VSOCK_PONG))
		snprintf(vp->err, sizeof(vp->err), "write: %s", strerror(errno));
	/* Open until the guest has read the reply: the test joins after
	 * the run. */
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	poll(&p, 1, PEER_WAIT_MS);
	close(c);
	return NULL;
}

/* virtio-vsock through vhost-vsock: the guest connects to a host
 * AF_VSOCK listener, sends a line, reads the reply. */
static void test_vhost_vsock(void **state)
{
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL,
			 .guest_mode = VNET_VSOCK,
			 .vhost = true,
			 .kernel = true,
			 .features = F(VIRTIO_RING_F_EVENT_IDX) };
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
	struct kvmkit_virtio_vsock_config sc = { 0 };
	struct kvmkit_virtio_mmio_config vc;
	struct kvmkit_virtio *dev = NULL;
	struct vsock_peer vp = { -1 };
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	uint64_t cid, port;
	pthread_t th;

	require_kvm();
	if (access("/dev/vhost-vsock", R_OK | W_OK)) {
		printf("skipped: no /dev/vhost-vsock here (the emulated x86 host has it with "
		       "--module vhost_vsock)\n");
		if (test_only_mode)
			exit(TEST_SKIP);
		skip();
	}
	cid = 3 + (uint64_t)getpid() % 100000;
	port = 5000 + (uint64_t)getpid() % 1000;
	vp.lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(vp.lfd >= 0);
	addr.svm_port = (unsigned int)port;
	assert_int_equal(bind(vp.lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(vp.lfd, 1), 0);
	m = make_machine(&r);
	kvmkit_virtio_mmio_config_init(&vc);
	sc.cid = cid;
	if (kvmkit_virtio_vsock_create(kvmkit_machine_vm(m), &vc, &sc, &dev))
		fail_msg("virtio-vsock: %s", kvmkit_strerror());
	set_params(m, &r, dev);
	assert_int_equal(
		kvmkit_vm_write(kvmkit_machine_vm(m), VNET_PARAMS + 8 * VNET_P_CID, &cid, 8), 0);
	assert_int_equal(
		kvmkit_vm_write(kvmkit_machine_vm(m), VNET_PARAMS + 8 * VNET_P_PORT, &port, 8), 0);
	assert_int_equal(pthread_create(&th, NULL, vsock_thread, &vp), 0);
	run_to_stop(m, &info);
	collect(m, &r);
	kvmkit_virtio_get_stats(dev, &r.vst);
	kvmkit_virtio_destroy(dev);
	kvmkit_machine_destroy(m);
	shutdown(vp.lfd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(vp.lfd);
	printf("vsock cid %llu port %llu: guest irqs %u (+%u spurious), tx %u, reply of %u "
	       "bytes\n",
	       (unsigned long long)cid, (unsigned long long)port, r.res[VNET_R_IRQS],
	       r.res[VNET_R_SPURIOUS], r.res[VNET_R_TX], r.res[VNET_R_IN_LEN]);
	if (vp.err[0])
		fail_msg("host end: %s", vp.err);
	check_stop(&r, &info);
	assert_true(vp.got_ping);
	assert_int_equal(r.res[VNET_R_RX], 1);
	assert_int_equal(r.res[VNET_R_IN_LEN], strlen(VNET_VSOCK_PONG));
	assert_int_equal(r.vst.malformed, 0);
	check_irqs(&r);
}

/* A cid below 3 is refused before anything is opened. */
static void test_vsock_bad_cid(void **state)
{
	struct kvmkit_virtio_vsock_config sc = { .cid = 2 };
	struct run r = { .mode = KVMKIT_IRQCHIP_KERNEL };
	struct kvmkit_virtio *dev = NULL;
	struct kvmkit_machine *m;

	require_kvm();
	m = make_machine(&r);
	assert_int_equal(kvmkit_virtio_vsock_create(kvmkit_machine_vm(m), NULL, &sc, &dev),
			 -EINVAL);
	sc.cid = 1ull << 32;
	assert_int_equal(kvmkit_virtio_vsock_create(kvmkit_machine_vm(m), NULL, &sc, &dev),
			 -EINVAL);
	kvmkit_machine_destroy(m);
}

/* The machine builds net from its config after the console, in the next
 * window, and refuses to save a machine with a tap. */
static void test_machine_devices(void **state)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_virtio_info a, b;
	struct tap tap;
	void *buf = NULL;
	size_t len = 0;

	require_kvm();
	tap_create(&tap);
	kvmkit_machine_config_init(&cfg);
	cfg.vm.mem_size = 64 << 20;
	cfg.kernel = kvmkit_demo_guest(&cfg.kernel_len);
	cfg.virtio_rng = true;
	cfg.net_tap = tap.name;
	cfg.virtio_console = true;
	if (kvmkit_machine_create(&cfg, &m))
		fail_msg("machine: %s", kvmkit_strerror());
	assert_int_equal(kvmkit_machine_virtio_count(m), 3);
	kvmkit_virtio_get_info(kvmkit_machine_virtio(m, 1), &a);
	kvmkit_virtio_get_info(kvmkit_machine_virtio(m, 2), &b);
	assert_string_equal(a.name, "virtio-console");
	assert_int_equal(a.base, KVMKIT_VIRTIO_MMIO_BASE + KVMKIT_VIRTIO_MMIO_STRIDE);
	assert_string_equal(b.name, "virtio-net");
	assert_int_equal(b.base, KVMKIT_VIRTIO_MMIO_BASE + 2 * KVMKIT_VIRTIO_MMIO_STRIDE);
	assert_true(a.gsi != b.gsi);
	assert_int_equal(kvmkit_machine_save_devices(m, &buf, &len), -ENOTSUP);
	printf("save: %s\n", kvmkit_strerror());
	free(buf);
	kvmkit_machine_destroy(m);
	tap_remove(&tap);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_mrg_kernel_edge),
		cmocka_unit_test(test_net_plain_split_level),
		cmocka_unit_test(test_net_offloads),
		cmocka_unit_test(test_net_hostile),
		cmocka_unit_test(test_vhost_net_kernel_edge),
		cmocka_unit_test(test_vhost_net_split_level),
		cmocka_unit_test(test_vhost_net_no_mrg),
		cmocka_unit_test(test_vhost_net_hostile),
		cmocka_unit_test(test_net_bad_tap),
		cmocka_unit_test(test_vhost_vsock),
		cmocka_unit_test(test_vsock_bad_cid),
		cmocka_unit_test(test_machine_devices),
	};

	test_args(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
