/* fpu.c: workload that holds known values in the FPU/SSE/AVX(/AVX-512) registers,
 * MXCSR, the x87 control word, the x87 stack and callee-saved GPRs while it is
 * checkpointed, spinning in asm on a flag that an ITIMER_REAL handler sets ~2 s
 * later; then stores every register and compares. */
#include "wl.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#define MXCSR_VAL 0x7f80u /* all exceptions masked, round toward zero */
#define FCW_VAL	  0x0e7fu /* x87: round toward zero, double precision */

struct regs {
	uint8_t vec[32][64]; /* zmm0-31 / ymm0-15 / xmm0-15 */
	uint16_t k[8];
	uint64_t gpr[6]; /* rbx r12 r13 r14 r15 r8 */
	uint8_t x87[8][16];
	uint32_t mxcsr;
	uint16_t fcw;
};

/* in and out adjacent: out.X is at in.X + sizeof(struct regs) */
static struct {
	struct regs in, out;
} R;
#define in  R.in
#define out R.out
static volatile int flag;
static volatile int alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
	flag = 1;
}

#define LOAD_GPR_X87                                                                               \
	"mov 0(%%rcx), %%rbx\n\t"                                                                  \
	"mov 8(%%rcx), %%r12\n\t"                                                                  \
	"mov 16(%%rcx), %%r13\n\t"                                                                 \
	"mov 24(%%rcx), %%r14\n\t"                                                                 \
	"mov 32(%%rcx), %%r15\n\t"                                                                 \
	"mov 40(%%rcx), %%r8\n\t"                                                                  \
	".irp i,0,1,2,3,4,5,6,7\n\t"                                                               \
	"fldt 48+\\i*16(%%rcx)\n\t"                                                                \
	".endr\n\t"                                                                                \
	"fldcw 176(%%rcx)\n\t"                                                                     \
	"ldmxcsr 180(%%rcx)\n\t"
#define SPIN                                                                                       \
	"1: pause\n\t"                                                                             \
	"cmpl $0, (%%rdx)\n\t"                                                                     \
	"je 1b\n\t"
#define STORE_GPR_X87                                                                              \
	"mov %%rbx, 0(%%rax)\n\t"                                                                  \
	"mov %%r12, 8(%%rax)\n\t"                                                                  \
	"mov %%r13, 16(%%rax)\n\t"                                                                 \
	"mov %%r14, 24(%%rax)\n\t"                                                                 \
	"mov %%r15, 32(%%rax)\n\t"                                                                 \
	"mov %%r8, 40(%%rax)\n\t"                                                                  \
	".irp i,0,1,2,3,4,5,6,7\n\t"                                                               \
	"fstpt 48+\\i*16(%%rax)\n\t"                                                               \
	".endr\n\t"                                                                                \
	"fnstcw 176(%%rax)\n\t"                                                                    \
	"stmxcsr 180(%%rax)\n\t"
#define CLOBBERS                                                                                   \
	"memory", "cc", "rbx", "r8", "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3",   \
	    "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",    \
	    "xmm14", "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"

/* misc block: gpr at 0, x87 at 48, fcw at 176, mxcsr at 180 (see struct misc) */
struct misc {
	uint64_t gpr[6];
	uint8_t x87[8][16];
	uint16_t fcw;
	uint16_t pad;
	uint32_t mxcsr;
};
static struct misc min, mout;
_Static_assert(offsetof(struct misc, x87) == 48, "x87 off");
_Static_assert(offsetof(struct misc, fcw) == 176, "fcw off");
_Static_assert(offsetof(struct misc, mxcsr) == 180, "mxcsr off");

__attribute__((noinline)) static void spin_avx512(void)
{
	__asm__ volatile(LOAD_GPR_X87 ".irp "
				      "i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,"
				      "22,23,24,25,26,27,28,29,30,31\n\t"
				      "vmovdqu64 \\i*64(%%rdi), %%zmm\\i\n\t"
				      ".endr\n\t"
				      ".irp i,1,2,3,4,5,6,7\n\t"
				      "kmovw \\i*2(%%rsi), %%k\\i\n\t"
				      ".endr\n\t" SPIN ".irp "
				      "i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,"
				      "22,23,24,25,26,27,28,29,30,31\n\t"
				      "vmovdqu64 %%zmm\\i, \\i*64+%c[vo](%%rdi)\n\t"
				      ".endr\n\t"
				      ".irp i,1,2,3,4,5,6,7\n\t"
				      "kmovw %%k\\i, \\i*2+%c[ko](%%rsi)\n\t"
				      ".endr\n\t" STORE_GPR_X87 "vzeroupper\n\t"
			 :
			 : "D"(in.vec), "S"(in.k), "d"(&flag), "c"(&min),
			   "a"(&mout), [vo] "i"(sizeof(struct regs)), [ko] "i"(sizeof(struct regs))
			 : CLOBBERS);
}

__attribute__((noinline)) static void spin_avx(void)
{
	__asm__ volatile(
	    LOAD_GPR_X87 ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
			 "vmovdqu \\i*64(%%rdi), %%ymm\\i\n\t"
			 ".endr\n\t" SPIN ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
			 "vmovdqu %%ymm\\i, \\i*64+%c[vo](%%rdi)\n\t"
			 ".endr\n\t" STORE_GPR_X87 "vzeroupper\n\t"
	    :
	    : "D"(in.vec), "d"(&flag), "c"(&min), "a"(&mout), [vo] "i"(sizeof(struct regs))
	    : CLOBBERS);
}

__attribute__((noinline)) static void spin_sse(void)
{
	__asm__ volatile(
	    LOAD_GPR_X87 ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
			 "movdqu \\i*64(%%rdi), %%xmm\\i\n\t"
			 ".endr\n\t" SPIN ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
			 "movdqu %%xmm\\i, \\i*64+%c[vo](%%rdi)\n\t"
			 ".endr\n\t" STORE_GPR_X87
	    :
	    : "D"(in.vec), "d"(&flag), "c"(&min), "a"(&mout), [vo] "i"(sizeof(struct regs))
	    : CLOBBERS);
}

int main(void)
{
	int nvec, vlen, i, j, nk = 0;
	const char *kind;
	static const long double x87v[8] = {
	    3.14159265358979323846L, -2.5L,    1e300L, 1.0L / 3, -0.0L,
	    12345678901234567890.0L, 1e-4000L, 42.0L};

	wl_init();
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) {
		nvec = 32, vlen = 64, nk = 8, kind = "avx512";
	} else if (__builtin_cpu_supports("avx")) {
		nvec = 16, vlen = 32, kind = "avx";
	} else {
		nvec = 16, vlen = 16, kind = "sse";
	}
	printf("wl: using %s registers\n", kind);
	for (i = 0; i < 32; i++)
		for (j = 0; j < 64; j++)
			in.vec[i][j] = (uint8_t)(i * 37 + j * 11 + 1 + (j > 16 ? 0x80 : 0));
	for (i = 1; i < 8; i++)
		in.k[i] = (uint16_t)(0x1111 * i ^ 0xa5c3);
	for (i = 0; i < 6; i++)
		min.gpr[i] = 0x0123456789abcdefULL * (i + 3) ^ 0xfeedfacecafebeefULL;
	for (i = 0; i < 8; i++)
		memcpy(min.x87[i], &x87v[i], 10);
	min.fcw = FCW_VAL;
	min.mxcsr = MXCSR_VAL;
	memset(&out, 0, sizeof(out));
	memset(&mout, 0, sizeof(mout));

	wl_on_signal(SIGALRM, on_alarm);

	wl_ready();
	wl_alarm_in(2);
	if (nk)
		spin_avx512();
	else if (vlen == 32)
		spin_avx();
	else
		spin_sse();
	/* back to defaults for the C code below */
	{
		uint32_t m = 0x1f80;
		uint16_t c = 0x037f;
		__asm__ volatile("ldmxcsr %0\n\tfldcw %1" ::"m"(m), "m"(c));
	}

	wl_check("alarm_ended_spin", alarms == 1, "alarms %d", alarms);
	for (i = 0; i < nvec; i++) {
		char name[32];
		snprintf(name, sizeof(name), "vec%d", i);
		for (j = 0; j < vlen && out.vec[i][j] == in.vec[i][j]; j++)
			;
		wl_check(name, j == vlen, "%s reg %d byte %d is %#x, expected %#x", kind, i, j,
			 out.vec[i][j], in.vec[i][j]);
	}
	for (i = 1; i < nk; i++) {
		char name[32];
		snprintf(name, sizeof(name), "k%d", i);
		wl_check(name, out.k[i] == in.k[i], "k%d = %#x, expected %#x", i, out.k[i],
			 in.k[i]);
	}
	for (i = 0; i < 6; i++) {
		static const char *gn[] = {"rbx", "r12", "r13", "r14", "r15", "r8"};
		wl_check(gn[i], mout.gpr[i] == min.gpr[i], "%s = %#llx, expected %#llx", gn[i],
			 (unsigned long long)mout.gpr[i], (unsigned long long)min.gpr[i]);
	}
	for (i = 0; i < 8; i++) {
		char name[32];
		/* pushed in order 0..7, popped from the top: st(i) held x87v[7 - i] */
		snprintf(name, sizeof(name), "x87_st%d", i);
		wl_check(name, memcmp(mout.x87[i], min.x87[7 - i], 10) == 0,
			 "st(%d) = %Lg, expected %Lg", i, *(long double *)mout.x87[i],
			 *(long double *)min.x87[7 - i]);
	}
	wl_check("mxcsr", mout.mxcsr == MXCSR_VAL, "mxcsr %#x, expected %#x", mout.mxcsr,
		 MXCSR_VAL);
	wl_check("x87_cw", mout.fcw == FCW_VAL, "fcw %#x, expected %#x", mout.fcw, FCW_VAL);
	wl_done();
}
