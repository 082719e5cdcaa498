// SPDX-License-Identifier: GPL-2.0
/* Exercises most BTF kinds: enums, unions, bitfields, floats, typedefs, qualifiers, forward
 * declarations, decl and type tags, static functions and variables. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __type_tag(x) __attribute__((btf_type_tag(x)))

enum colour { RED = -1, GREEN = 0, BLUE = 7 };
enum big { SMALL = 1, HUGE = 0x7fffffff };

struct opaque;
union opaque_u;

typedef unsigned int counter_t;

struct flags {
	unsigned int a : 3;
	unsigned int b : 5;
	int c : 12;
	unsigned char d;
	union {
		__u16 word;
		__u8 bytes[2];
	} u;
} __tag("packed_flags");

struct record {
	volatile counter_t hits;
	struct flags flags;
	const int *readonly;
	struct opaque *restrict cookie;
	union opaque_u *other;
	int __type_tag("user") *user_ptr;
	float ratio;
	double total;
	enum colour colour;
	enum big big;
	_Bool ok;
	char name[8] __tag("name_field");
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record);
} records SEC(".maps");

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps");

int kinds(void *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&kinds },
};

static volatile int static_counter;

static __noinline __tag("helper_fn") int classify(struct record *r __tag("arg"), int x)
{
	return r->colour == BLUE ? x + 1 : x;
}

SEC("raw_tp/sys_enter")
int kinds(void *ctx)
{
	__u32 key = 0;
	struct record *r = bpf_map_lookup_elem(&records, &key);

	if (!r)
		return 0;
	r->hits++;
	static_counter++;
	if (bpf_map_lookup_elem(&outer, &key))
		bpf_tail_call(ctx, &jumps, 1);
	return classify(r, static_counter);
}

char LICENSE[] SEC("license") = "GPL";
