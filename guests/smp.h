/* Shared between smp.c (BSP, 32-bit) and smptramp.S (AP trampoline, real mode). */
#define TRAMP_ADDR 0x8000	/* SIPI vector 0x08 -> CS=0x0800, IP=0 */
#define SIPI_VECTOR (TRAMP_ADDR >> 12)
#define AP_LOCK 0x7000		/* byte spinlock */
#define AP_COUNTER 0x7004	/* dword, bumped with lock xadd: numbers the APs 1.. */
#define AP_STARTED 0x7008	/* dword, incremented when an AP is done printing */
