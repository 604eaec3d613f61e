// SPDX-License-Identifier: MIT
/*
 * Fault recovery for host accesses to VMM memory (see uaccess.h).
 *
 * One handler serves SIGSEGV and SIGBUS for the whole process.  A fault
 * is gmem's when the faulting thread is inside a gmem_uaccess span and the
 * kernel raised the signal for a memory access (si_code MAPERR/ACCERR/
 * PKUERR or SI_KERNEL, or ADRERR/OBJERR); the handler then jumps back to the
 * span's gmem_uaccess_try().  The span pointer is thread-local, so another
 * thread's fault can never be taken for ours.  Any other signal goes to
 * the chain: the action the program set, through gmem_sigaction() (or the
 * drop-in's sigaction()), or the one in place when gmem installed itself.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include <gmem/gmem.h>

#include "uaccess.h"
#include "util.h"

static __thread struct gmem_uaccess *cur
	__attribute__((tls_model("initial-exec")));

/*
 * The chain per signal: copies in a small ring, published by pointer, so
 * that the handler reads a whole action without a lock.  A writer reuses
 * a slot only four updates later, long after any handler read it.
 */
#define CHAIN_SLOTS 4
struct chain {
	struct sigaction slot[CHAIN_SLOTS];
	unsigned int next;
	struct sigaction *act;
};

static struct chain chains[2]; /* SIGSEGV, SIGBUS */
static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_error;

/* libc's sigaction; the drop-in, which stands in for it, points it on. */
static int (*real_sigaction)(int, const struct sigaction *,
			     struct sigaction *) = sigaction;

static struct chain *chain_of(int sig)
{
	return sig == SIGSEGV ? &chains[0] : sig == SIGBUS ? &chains[1] : NULL;
}

static bool from_access(int sig, const siginfo_t *si)
{
	/*
	 * SI_KERNEL: a #GP, which a non-canonical address gives (si_addr 0);
	 * no process can send it, so it is this thread's own access too.
	 */
	if (sig == SIGSEGV)
		return si->si_code == SEGV_MAPERR ||
		       si->si_code == SEGV_ACCERR ||
		       si->si_code == SEGV_PKUERR || si->si_code == SI_KERNEL;
	/* BUS_MCEERR_* (poison) stays the program's, as under KVM. */
	return si->si_code == BUS_ADRERR || si->si_code == BUS_OBJERR;
}

/* The program's action, taken as the kernel would take it. */
static void chain_call(int sig, siginfo_t *si, void *uc)
{
	struct chain *c = chain_of(sig);
	struct sigaction a = *__atomic_load_n(&c->act, __ATOMIC_ACQUIRE);
	sigset_t old, s;

	if (!(a.sa_flags & SA_SIGINFO) &&
	    (a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN)) {
		struct sigaction dfl;

		/* A sent signal that the program ignores is dropped. */
		if (a.sa_handler == SIG_IGN && !from_access(sig, si))
			return;
		/*
		 * The default action: put it back and let the access fault
		 * again on return (a sent signal comes again once unblocked).
		 */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		real_sigaction(sig, &dfl, NULL);
		if (!from_access(sig, si))
			raise(sig);
		return;
	}
	s = a.sa_mask;
	pthread_sigmask(SIG_BLOCK, &s, &old);
	if (a.sa_flags & SA_NODEFER) {
		sigemptyset(&s);
		sigaddset(&s, sig);
		pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	}
	if (a.sa_flags & SA_SIGINFO)
		a.sa_sigaction(sig, si, uc);
	else
		a.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	struct gmem_uaccess *g = cur;

	if (g && from_access(sig, si)) {
		ucontext_t *uc = ucv;
		sigset_t s;

		g->addr = si->si_addr;
		g->sig = sig;
		/* The page-fault error code's W bit. */
		g->write =
			sig == SIGSEGV && (uc->uc_mcontext.gregs[REG_ERR] & 2);
		cur = g->prev;
		sigemptyset(&s);
		sigaddset(&s, sig);
		pthread_sigmask(SIG_UNBLOCK, &s, NULL);
		siglongjmp(g->env, 1);
	}
	chain_call(sig, si, ucv);
}

static void set_chain(struct chain *c, const struct sigaction *act)
{
	struct sigaction *s = &c->slot[c->next++ % CHAIN_SLOTS];

	*s = *act;
	__atomic_store_n(&c->act, s, __ATOMIC_RELEASE);
}

/* Ours, with the program's SA_RESTART (what an interrupted call sees). */
static int install(int sig, const struct sigaction *chain,
		   struct sigaction *old)
{
	struct sigaction a;

	memset(&a, 0, sizeof(a));
	a.sa_sigaction = on_fault;
	a.sa_flags = SA_SIGINFO | SA_ONSTACK | (chain->sa_flags & SA_RESTART);
	sigemptyset(&a.sa_mask);
	return real_sigaction(sig, &a, old) ? -errno : 0;
}

static void init_once(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS};

	pthread_mutex_lock(&chain_lock);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		struct sigaction old;
		struct chain *c = chain_of(sigs[i]);

		if (real_sigaction(sigs[i], NULL, &old)) {
			init_error = -errno;
			break;
		}
		set_chain(c, &old);
		init_error = install(sigs[i], &old, NULL);
		if (init_error)
			break;
	}
	pthread_mutex_unlock(&chain_lock);
}

int gmem_uaccess_init(void)
{
	pthread_once(&once, init_once);
	return init_error;
}

void gmem_uaccess_set_sigaction(int (*fn)(int, const struct sigaction *,
					  struct sigaction *))
{
	real_sigaction = fn;
}

int gmem_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	struct chain *c = chain_of(sig);
	struct sigaction prev;
	int r;

	if (!c)
		return real_sigaction(sig, act, oact);
	r = gmem_uaccess_init();
	if (r) {
		errno = -r;
		return -1;
	}
	pthread_mutex_lock(&chain_lock);
	prev = *c->act;
	if (act) {
		/* Ours stays in; only its SA_RESTART follows the program. */
		r = install(sig, act, NULL);
		if (!r)
			set_chain(c, act);
	}
	pthread_mutex_unlock(&chain_lock);
	if (r) {
		errno = -r;
		return -1;
	}
	if (oact)
		*oact = prev;
	return 0;
}

void gmem_uaccess_begin(struct gmem_uaccess *g)
{
	g->prev = cur;
	cur = g;
}

void gmem_uaccess_end(struct gmem_uaccess *g)
{
	cur = g->prev;
}

int gmem_uaccess_probe(const void *p, bool write)
{
	struct gmem_uaccess g;
	uint8_t v;

	if (gmem_uaccess_try(&g))
		return -EFAULT;
	/* Assembly, so that no sanitizer looks at the address first. */
	if (write)
		__asm__ volatile("lock orb $0, %0"
				 : "+m"(*(volatile uint8_t *)p)
				 :
				 : "memory");
	else
		__asm__ volatile("movb %1, %0"
				 : "=q"(v)
				 : "m"(*(const volatile uint8_t *)p)
				 : "memory");
	gmem_uaccess_end(&g);
	return 0;
}

int gmem_uaccess_probe_range(const void *p, size_t len, bool write)
{
	uintptr_t a = (uintptr_t)p, end = a + len;

	if (!len)
		return 0;
	if (end < a)
		return -EFAULT;
	for (a &= ~(uintptr_t)(PAGE_SIZE - 1); a < end; a += PAGE_SIZE) {
		int r = gmem_uaccess_probe(
			(const void *)(a < (uintptr_t)p ? (uintptr_t)p : a),
			write);

		if (r)
			return r;
	}
	return 0;
}

int gmem_uaccess_copy(void *dst, const void *src, size_t n)
{
	struct gmem_uaccess g;

	if (gmem_uaccess_try(&g))
		return -EFAULT;
	/*
	 * REP MOVSB rather than memcpy(): a sanitizer's memcpy checks its
	 * shadow of a wild user address first and reports it, where the
	 * access itself would fault into -EFAULT.
	 */
	__asm__ volatile("rep movsb"
			 : "+D"(dst), "+S"(src), "+c"(n)
			 :
			 : "memory");
	gmem_uaccess_end(&g);
	return 0;
}
