// SPDX-License-Identifier: MIT
/*
 * The control socket in front of a running guest: pause_loop counts at CPL3
 * as fast as it can, and what the counter does is what the guest observed.
 * Paused through the socket it does not move, resumed it moves again;
 * query reports the state, vCPUs, memory and interrupts; refused requests
 * and hostile clients leave the VM running as it was.
 */
#include <json-c/json.h>
#include <sys/stat.h>

#include "kvm_test.h"
#include "../unit/api_clients.h"

#define MEM (64ull << 20)

struct api_vm {
	char dir[64];
	char path[128];
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	struct kvmkit_api_server *srv;
};

/* A pause_loop machine (@vcpus, irqchip @mode) behind a fresh socket. */
static void api_vm_open(struct api_vm *a, unsigned int vcpus, enum kvmkit_irqchip_mode mode)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_api_config acfg;

	snprintf(a->dir, sizeof(a->dir), "/tmp/kvmkit-api-XXXXXX");
	assert_non_null(mkdtemp(a->dir));
	snprintf(a->path, sizeof(a->path), "%s/sock", a->dir);
	guest_config(&cfg, "pause_loop", vcpus, MEM);
	cfg.irqchip_mode = mode;
	a->m = machine_from(&cfg);
	a->vm = kvmkit_machine_vm(a->m);
	kvmkit_api_config_init(&acfg);
	acfg.path = a->path;
	if (kvmkit_api_server_create(a->vm, &acfg, &a->srv))
		fail_msg("API server: %s", kvmkit_strerror());
}

static void api_vm_close(struct api_vm *a)
{
	struct stat st;

	kvmkit_api_server_destroy(a->srv);
	assert_int_equal(lstat(a->path, &st), -1); /* the socket went with it */
	kvmkit_machine_destroy(a->m);
	rmdir(a->dir);
}

/* One request through kvmkit_api_call(); the reply, parsed. */
static struct json_object *call(struct api_vm *a, const char *req)
{
	struct json_object *o;
	char *reply;

	if (kvmkit_api_call(a->path, req, API_WAIT_MS, &reply))
		fail_msg("%s: %s", req, kvmkit_strerror());
	o = json_tokener_parse(reply);
	if (!o || !json_object_is_type(o, json_type_object))
		fail_msg("%s: reply is not a JSON object: %s", req, reply);
	free(reply);
	return o;
}

static struct json_object *at(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\" in %s", key, json_object_to_json_string(o));
	return v;
}

static const char *str(struct json_object *o, const char *key)
{
	return json_object_get_string(at(o, key));
}

static uint64_t num(struct json_object *o, const char *key)
{
	return json_object_get_uint64(at(o, key));
}

/* Sends @req, asserts an ok reply, and returns its "state". */
static void expect_ok(struct api_vm *a, const char *req, const char *state)
{
	struct json_object *r = call(a, req);

	if (!json_object_get_boolean(at(r, "ok")))
		fail_msg("%s refused: %s", req, json_object_to_json_string(r));
	assert_string_equal(str(r, "state"), state);
	json_object_put(r);
}

/* Sends @req, asserts an error reply of @kind. */
static void expect_error(struct api_vm *a, const char *req, const char *kind, int err)
{
	struct json_object *r = call(a, req);
	struct json_object *e;

	if (json_object_get_boolean(at(r, "ok")))
		fail_msg("%s accepted: %s", req, json_object_to_json_string(r));
	e = at(r, "error");
	assert_string_equal(str(e, "kind"), kind);
	assert_int_equal(num(e, "errno"), err);
	assert_true(strlen(str(e, "message")) > 0);
	json_object_put(r);
}

static uint64_t counter(struct kvmkit_vm *vm)
{
	return __atomic_load_n(
		(volatile uint64_t *)kvmkit_vm_gpa_to_hva(vm, GUEST_PAUSE_COUNTER_ADDR, 8),
		__ATOMIC_ACQUIRE);
}

/* The guest is counting: its counter moves (bounded wait). */
static void assert_counting(struct kvmkit_vm *vm)
{
	uint64_t c0 = counter(vm);

	for (int i = 0; counter(vm) == c0 && i < GUEST_WATCHDOG_MS; i++)
		usleep(1000);
	assert_true(counter(vm) > c0);
}

static void start_guest(struct api_vm *a)
{
	assert_int_equal(kvmkit_vm_start(a->vm), 0);
	assert_int_equal(wait_for_u64(a->vm, GUEST_PAUSE_MAGIC_ADDR, GUEST_PAUSE_MAGIC), 0);
}

static void test_api_lifecycle(void **state)
{
	struct api_vm a;
	struct kvmkit_stop_info info;
	struct json_object *r, *v, *mem;
	uint64_t c1, c2, runs;
	struct stat st;

	api_vm_open(&a, 1, KVMKIT_IRQCHIP_KERNEL);
	assert_int_equal(lstat(a.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	/* Before the start: what the machine is, and nothing that would
	 * change it. A stop refused here must not keep the VM from starting. */
	r = call(&a, "{\"cmd\":\"query\",\"id\":\"q0\"}");
	assert_true(json_object_get_boolean(at(r, "ok")));
	assert_string_equal(str(r, "id"), "q0");
	assert_int_equal(num(r, "protocol"), KVMKIT_API_PROTOCOL);
	assert_string_equal(str(r, "state"), "created");
	assert_int_equal(num(r, "vcpu_count"), 1);
	assert_int_equal(json_object_array_length(at(r, "vcpus")), 1);
	mem = at(r, "memory");
	assert_int_equal(num(mem, "total"), MEM);
	v = json_object_array_get_idx(at(mem, "regions"), 0);
	assert_int_equal(num(v, "gpa"), 0);
	assert_int_equal(num(v, "size"), MEM);
	assert_false(json_object_get_boolean(at(v, "readonly")));
	assert_string_equal(str(at(r, "irqchip"), "mode"), "kernel");
	json_object_put(r);
	expect_error(&a, "{\"cmd\":\"pause\"}", "invalid-state", EBUSY);
	expect_error(&a, "{\"cmd\":\"resume\"}", "invalid-state", EBUSY);
	expect_error(&a, "{\"cmd\":\"stop\"}", "invalid-state", EBUSY);
	assert_int_equal(kvmkit_vm_state(a.vm), KVMKIT_VM_CREATED);
	start_guest(&a);
	expect_ok(&a, "{\"cmd\":\"query\"}", "running");

	for (int round = 0; round < 2; round++) {
		/* Paused: out of KVM_RUN, so the guest's counter cannot move,
		 * and the vCPU statistics are exact and still. */
		r = call(&a, "{\"cmd\":\"pause\",\"id\":7}");
		assert_true(json_object_get_boolean(at(r, "ok")));
		assert_int_equal(num(r, "id"), 7);
		assert_string_equal(str(r, "state"), "paused");
		json_object_put(r);
		assert_int_equal(kvmkit_vm_state(a.vm), KVMKIT_VM_PAUSED);
		c1 = counter(a.vm);
		r = call(&a, "{\"cmd\":\"query\"}");
		assert_string_equal(str(r, "state"), "paused");
		runs = num(json_object_array_get_idx(at(r, "vcpus"), 0), "runs");
		assert_true(runs >= 1);
		json_object_put(r);
		usleep(50000);
		expect_error(&a, "{\"cmd\":\"pause\"}", "invalid-state", EBUSY);
		r = call(&a, "{\"cmd\":\"query\"}");
		assert_int_equal(num(json_object_array_get_idx(at(r, "vcpus"), 0), "runs"), runs);
		json_object_put(r);
		c2 = counter(a.vm);
		assert_true(c1 == c2);

		expect_ok(&a, "{\"cmd\":\"resume\"}", "running");
		assert_counting(a.vm);
		expect_error(&a, "{\"cmd\":\"resume\"}", "invalid-state", EBUSY);
	}

	/* A server without the machine cannot save or move it: a clear
	 * refusal, and the guest runs on. */
	expect_error(&a, "{\"cmd\":\"snapshot\",\"dir\":\"/tmp/kvmkit-snap\"}", "unsupported",
		     ENOTSUP);
	expect_error(&a, "{\"cmd\":\"migrate\",\"to\":\"unix:/tmp/x\"}", "unsupported", ENOTSUP);
	expect_error(&a, "{\"cmd\":\"snapshot\"}", "invalid-parameter", EINVAL);
	assert_int_equal(kvmkit_vm_state(a.vm), KVMKIT_VM_RUNNING);
	assert_counting(a.vm);

	/* Stop from paused; the owner's wait sees a requested stop. */
	expect_ok(&a, "{\"cmd\":\"pause\"}", "paused");
	expect_ok(&a, "{\"cmd\":\"stop\"}", "stopped");
	assert_int_equal(kvmkit_vm_wait(a.vm, 0, &info), 0);
	assert_int_equal(info.reason, KVMKIT_STOP_REQUESTED);
	expect_ok(&a, "{\"cmd\":\"query\"}", "stopped");
	expect_error(&a, "{\"cmd\":\"resume\"}", "invalid-state", EBUSY);
	expect_error(&a, "{\"cmd\":\"stop\"}", "invalid-state", EBUSY);
	c1 = counter(a.vm);
	usleep(20000);
	assert_true(counter(a.vm) == c1);
	api_vm_close(&a);
}

/* Per-GSI statistics in either irqchip mode: only GSIs that saw something. */
static void test_api_query_irq(void **state)
{
	static const enum kvmkit_irqchip_mode modes[] = { KVMKIT_IRQCHIP_KERNEL,
							  KVMKIT_IRQCHIP_SPLIT };

	for (size_t i = 0; i < 2; i++) {
		struct kvmkit_irqchip *chip;
		struct json_object *r, *irq, *gsis;
		struct api_vm a;
		bool seen = false;

		api_vm_open(&a, 2, modes[i]);
		chip = kvmkit_machine_irqchip(a.m);
		assert_int_equal(kvmkit_irq_pulse(chip, 20, NULL), 0);
		assert_int_equal(kvmkit_irq_pulse(chip, 20, NULL), 0);
		r = call(&a, "{\"cmd\":\"query\"}");
		assert_int_equal(num(r, "vcpu_count"), 2);
		assert_int_equal(num(json_object_array_get_idx(at(r, "vcpus"), 1), "id"), 1);
		irq = at(r, "irqchip");
		assert_string_equal(str(irq, "mode"), kvmkit_irqchip_mode_name(modes[i]));
		gsis = at(irq, "gsis");
		for (size_t j = 0; j < json_object_array_length(gsis); j++) {
			struct json_object *g = json_object_array_get_idx(gsis, j);
			struct kvmkit_gsi_stats st;

			/* What the library counts, and never a GSI with nothing. */
			assert_int_equal(kvmkit_irq_gsi_stats(chip, (uint32_t)num(g, "gsi"), &st),
					 0);
			assert_int_equal(num(g, "asserts"), st.asserts);
			assert_int_equal(num(g, "masked"), st.masked);
			assert_true(st.asserts || st.irqfd_signals || st.irqfds_kernel ||
				    st.irqfds_thread);
			if (num(g, "gsi") == 20) {
				assert_int_equal(num(g, "asserts"), 2);
				seen = true;
			}
		}
		assert_true(seen);
		json_object_put(r);
		api_vm_close(&a);
	}
}

#define PIPELINED 10000
#define CONCURRENT 50

/* Hostile clients while the guest runs: it keeps counting, and a client
 * that behaves still gets its answers. */
static void test_api_hostile(void **state)
{
	static const char *const bad[] = {
		"{\"cmd\":\"pause\"\n",
		"[\"pause\"]\n",
		"{\"cmd\":\"pause!\"}\n",
		"{\"cmd\":[\"stop\"]}\n",
		"{\"cmd\":\"stop\",\"now\":true}\n",
		"\xff\xfe{}\n",
	};
	size_t big = 1 << 20, len = 0, sent = 0;
	struct api_conn c, many[CONCURRENT];
	char *data, *reqs, *replies, *p;
	unsigned int fds;
	struct api_vm a;
	int64_t t0;
	int fd;

	api_vm_open(&a, 1, KVMKIT_IRQCHIP_KERNEL);
	start_guest(&a);
	fds = api_fd_count();

	/* Malformed, not an object, unknown, wrong types, unknown fields. */
	fd = api_connect(a.path);
	api_conn_init(&c, fd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *line;

		assert_int_equal(api_send(fd, bad[i], strlen(bad[i])), 0);
		line = api_conn_line(&c);
		if (!line || !strstr(line, "{\"ok\":false,\"error\":{\"kind\":"))
			fail_msg("%s: reply %s", bad[i], line ? line : "(none)");
		free(line);
	}
	api_conn_close(&c);
	assert_int_equal(kvmkit_vm_state(a.vm), KVMKIT_VM_RUNNING);

	/* 1 MiB without a newline: an error, then the server hangs up. */
	data = malloc(big);
	memset(data, '{', big);
	fd = api_connect(a.path);
	api_conn_init(&c, fd);
	api_send(fd, data, big); /* may end in EPIPE once the server hangs up */
	p = api_conn_line(&c);
	assert_non_null(p);
	assert_non_null(strstr(p, "\"kind\":\"resource\""));
	free(p);
	assert_true(api_conn_wait_closed(&c));
	api_conn_close(&c);
	free(data);

	/* 10,000 requests in one write: every reply, in order (as fast as
	 * the server gets the CPU the guest busy-loops on: api_pipeline()
	 * fails only when replies stop coming). */
	reqs = malloc(PIPELINED * 40);
	for (int i = 0; i < PIPELINED; i++)
		len += (size_t)sprintf(reqs + len, "{\"cmd\":\"query\",\"id\":%d}\n", i);
	t0 = api_now_ms();
	replies = api_pipeline(a.path, reqs, len, PIPELINED);
	if (!replies)
		fail_msg("FAIL: %d pipelined queries: not every reply came (see above)", PIPELINED);
	printf("%d pipelined replies in %lld ms\n", PIPELINED, (long long)(api_now_ms() - t0));
	p = replies;
	for (int i = 0; i < PIPELINED; i++) {
		char want[48];
		int n = snprintf(want, sizeof(want), "{\"ok\":true,\"id\":%d,\"protocol\":1,", i);

		if (strncmp(p, want, (size_t)n))
			fail_msg("reply %d: %.80s", i, p);
		p = strchr(p, '\n') + 1;
	}
	free(replies);

	/* Gone mid-request: the half-sent stop never runs. */
	fd = api_connect(a.path);
	assert_int_equal(api_send(fd, "{\"cmd\":\"stop\"}", 14), 0);
	close(fd);
	/* Gone mid-reply: the same 10,000 requests, no reply read. */
	fd = api_connect(a.path);
	while (sent < len) {
		ssize_t n = send(fd, reqs + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	close(fd);
	free(reqs);

	/* 50 clients at once. */
	for (int i = 0; i < CONCURRENT; i++) {
		fd = api_connect(a.path);
		assert_true(fd >= 0);
		api_conn_init(&many[i], fd);
		assert_int_equal(api_send(fd, "{\"cmd\":\"query\"}\n", 16), 0);
	}
	for (int i = 0; i < CONCURRENT; i++) {
		p = api_conn_line(&many[i]);
		assert_non_null(p);
		assert_non_null(strstr(p, "\"state\":\"running\""));
		free(p);
		api_conn_close(&many[i]);
	}

	/* After all of it: no fd left behind, the guest counting, answers. */
	assert_true(api_fds_back_to(fds));
	assert_int_equal(kvmkit_vm_state(a.vm), KVMKIT_VM_RUNNING);
	assert_counting(a.vm);
	expect_ok(&a, "{\"cmd\":\"query\"}", "running");
	expect_ok(&a, "{\"cmd\":\"stop\"}", "stopped");
	api_vm_close(&a);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_lifecycle),
		cmocka_unit_test(test_api_query_irq),
		cmocka_unit_test(test_api_hostile),
	};

	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
