/*
 * kvm_probe.c - prints the facts of the system's headers that jvmm's Java side hard-codes.
 *
 * One line per fact, "KEY VALUE" (VALUE in decimal). Keys:
 *   sizeof.TAG / alignof.TAG            struct TAG
 *   offsetof.TAG.PATH / sizeof.TAG.PATH a member, PATH spelled as in the Java layout
 *                                       (kvm_run's anonymous exit union is "exit")
 *   CLASS.NAME                          a constant of dev.jvmm.sys.CLASS (KvmApi, LibC, Signals, Terminal, Tun)
 *   sizeof.termios                      a lower bound for Terminal.TERMIOS_BYTES
 *
 * KvmApiHeaderTest (src/test/java/dev/jvmm/sys) compiles and runs this and compares every line with
 * the Java layouts and constants; keys on one side only are errors too, so keep the two in step.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>

#define P(key, value) printf("%s %lld\n", (key), (long long) (value))

/* a struct: its size and alignment */
#define STRUCT(tag) do { P("sizeof." #tag, sizeof(struct tag)); P("alignof." #tag, _Alignof(struct tag)); } while (0)
/* a member: its offset and size; FIELD_AS when the Java path differs from the C member designator */
#define FIELD_AS(tag, jpath, member) do { \
        P("offsetof." #tag "." jpath, offsetof(struct tag, member)); \
        P("sizeof." #tag "." jpath, sizeof(((struct tag *) 0)->member)); } while (0)
#define FIELD(tag, member) FIELD_AS(tag, #member, member)
/* kvm_run's exit union is anonymous in C: the Java path "exit.X" is C's "X" */
#define EXIT(jpath, member) FIELD_AS(kvm_run, "exit." jpath, member)

/* a constant; each macro stringifies its own argument, so the key is the name, not its expansion */
#define CONST_AS(cls, jname, value) P(#cls "." #jname, (value))
#define KVM(name) P("KvmApi." #name, (name))
#define LIBC(name) P("LibC." #name, (name))

static void structs(void) {
    STRUCT(kvm_userspace_memory_region);
    FIELD(kvm_userspace_memory_region, slot);
    FIELD(kvm_userspace_memory_region, flags);
    FIELD(kvm_userspace_memory_region, guest_phys_addr);
    FIELD(kvm_userspace_memory_region, memory_size);
    FIELD(kvm_userspace_memory_region, userspace_addr);

    STRUCT(kvm_regs);
    FIELD(kvm_regs, rax); FIELD(kvm_regs, rbx); FIELD(kvm_regs, rcx); FIELD(kvm_regs, rdx);
    FIELD(kvm_regs, rsi); FIELD(kvm_regs, rdi); FIELD(kvm_regs, rsp); FIELD(kvm_regs, rbp);
    FIELD(kvm_regs, r8); FIELD(kvm_regs, r9); FIELD(kvm_regs, r10); FIELD(kvm_regs, r11);
    FIELD(kvm_regs, r12); FIELD(kvm_regs, r13); FIELD(kvm_regs, r14); FIELD(kvm_regs, r15);
    FIELD(kvm_regs, rip); FIELD(kvm_regs, rflags);

    STRUCT(kvm_segment);
    FIELD(kvm_segment, base); FIELD(kvm_segment, limit); FIELD(kvm_segment, selector);
    FIELD(kvm_segment, type); FIELD(kvm_segment, present); FIELD(kvm_segment, dpl);
    FIELD(kvm_segment, db); FIELD(kvm_segment, s); FIELD(kvm_segment, l); FIELD(kvm_segment, g);
    FIELD(kvm_segment, avl); FIELD(kvm_segment, unusable); FIELD(kvm_segment, padding);

    STRUCT(kvm_dtable);
    FIELD(kvm_dtable, base); FIELD(kvm_dtable, limit); FIELD(kvm_dtable, padding);

    STRUCT(kvm_sregs);
    FIELD(kvm_sregs, cs); FIELD(kvm_sregs, ds); FIELD(kvm_sregs, es); FIELD(kvm_sregs, fs);
    FIELD(kvm_sregs, gs); FIELD(kvm_sregs, ss); FIELD(kvm_sregs, tr); FIELD(kvm_sregs, ldt);
    FIELD(kvm_sregs, gdt); FIELD(kvm_sregs, idt);
    FIELD(kvm_sregs, cr0); FIELD(kvm_sregs, cr2); FIELD(kvm_sregs, cr3); FIELD(kvm_sregs, cr4);
    FIELD(kvm_sregs, cr8); FIELD(kvm_sregs, efer); FIELD(kvm_sregs, apic_base);
    FIELD(kvm_sregs, interrupt_bitmap);

    STRUCT(kvm_fpu);
    FIELD(kvm_fpu, fpr); FIELD(kvm_fpu, fcw); FIELD(kvm_fpu, fsw); FIELD(kvm_fpu, ftwx);
    FIELD(kvm_fpu, pad1); FIELD(kvm_fpu, last_opcode); FIELD(kvm_fpu, last_ip); FIELD(kvm_fpu, last_dp);
    FIELD(kvm_fpu, xmm); FIELD(kvm_fpu, mxcsr); FIELD(kvm_fpu, pad2);

    STRUCT(kvm_irq_level);
    FIELD(kvm_irq_level, irq); FIELD(kvm_irq_level, level);

    STRUCT(kvm_pit_config);
    FIELD(kvm_pit_config, flags); FIELD(kvm_pit_config, pad);

    STRUCT(kvm_cpuid_entry2);
    FIELD(kvm_cpuid_entry2, function); FIELD(kvm_cpuid_entry2, index); FIELD(kvm_cpuid_entry2, flags);
    FIELD(kvm_cpuid_entry2, eax); FIELD(kvm_cpuid_entry2, ebx); FIELD(kvm_cpuid_entry2, ecx);
    FIELD(kvm_cpuid_entry2, edx); FIELD(kvm_cpuid_entry2, padding);

    STRUCT(kvm_cpuid2);                 /* header only: entries[] is a flexible array */
    FIELD(kvm_cpuid2, nent); FIELD(kvm_cpuid2, padding);

    STRUCT(kvm_msr_entry);
    FIELD(kvm_msr_entry, index); FIELD(kvm_msr_entry, reserved); FIELD(kvm_msr_entry, data);

    STRUCT(kvm_msrs);                   /* header only: entries[] is a flexible array */
    FIELD(kvm_msrs, nmsrs); FIELD(kvm_msrs, pad);

    STRUCT(kvm_signal_mask);            /* header only: sigset[] is a flexible array */
    FIELD(kvm_signal_mask, len);

    STRUCT(kvm_mp_state);
    FIELD(kvm_mp_state, mp_state);
    STRUCT(kvm_irq_routing_entry);
    FIELD(kvm_irq_routing_entry, gsi); FIELD(kvm_irq_routing_entry, type); FIELD(kvm_irq_routing_entry, flags);
    FIELD(kvm_irq_routing_entry, pad); FIELD(kvm_irq_routing_entry, u);
    STRUCT(kvm_irq_routing);            /* header only: entries[] is a flexible array */
    FIELD(kvm_irq_routing, nr); FIELD(kvm_irq_routing, flags);

    STRUCT(kvm_lapic_state);
    FIELD(kvm_lapic_state, regs);

    STRUCT(kvm_irqfd);
    FIELD(kvm_irqfd, fd); FIELD(kvm_irqfd, gsi); FIELD(kvm_irqfd, flags); FIELD(kvm_irqfd, resamplefd);
    FIELD(kvm_irqfd, pad);

    STRUCT(kvm_ioeventfd);
    FIELD(kvm_ioeventfd, datamatch); FIELD(kvm_ioeventfd, addr); FIELD(kvm_ioeventfd, len);
    FIELD(kvm_ioeventfd, fd); FIELD(kvm_ioeventfd, flags); FIELD(kvm_ioeventfd, pad);

    STRUCT(kvm_run);
    FIELD(kvm_run, request_interrupt_window); FIELD(kvm_run, immediate_exit); FIELD(kvm_run, padding1);
    FIELD(kvm_run, exit_reason); FIELD(kvm_run, ready_for_interrupt_injection); FIELD(kvm_run, if_flag);
    FIELD(kvm_run, flags); FIELD(kvm_run, cr8); FIELD(kvm_run, apic_base);
    FIELD_AS(kvm_run, "exit", padding);  /* the anonymous union, spanned exactly by its char padding[256] */
    EXIT("hw", hw);
    EXIT("fail_entry", fail_entry);
    EXIT("fail_entry.hardware_entry_failure_reason", fail_entry.hardware_entry_failure_reason);
    EXIT("fail_entry.cpu", fail_entry.cpu);
    EXIT("io", io);
    EXIT("io.direction", io.direction); EXIT("io.size", io.size); EXIT("io.port", io.port);
    EXIT("io.count", io.count); EXIT("io.data_offset", io.data_offset);
    EXIT("mmio", mmio);
    EXIT("mmio.phys_addr", mmio.phys_addr); EXIT("mmio.data", mmio.data); EXIT("mmio.len", mmio.len);
    EXIT("mmio.is_write", mmio.is_write);
    EXIT("internal", internal);
    EXIT("internal.suberror", internal.suberror); EXIT("internal.ndata", internal.ndata);
    EXIT("internal.data", internal.data);
    EXIT("system_event", system_event);
    EXIT("system_event.type", system_event.type); EXIT("system_event.ndata", system_event.ndata);
    EXIT("system_event.data", system_event.data);
    EXIT("debug", debug);
    EXIT("padding", padding);
    FIELD(kvm_run, kvm_valid_regs); FIELD(kvm_run, kvm_dirty_regs); FIELD(kvm_run, s);

    STRUCT(pollfd);
    FIELD(pollfd, fd); FIELD(pollfd, events); FIELD(pollfd, revents);

    /* Terminal has no layout: it allocates TERMIOS_BYTES, which must be at least this */
    P("sizeof.termios", sizeof(struct termios));
}

static void kvm_constants(void) {
    KVM(KVMIO);
    CONST_AS(KvmApi, API_VERSION, KVM_API_VERSION);

    KVM(KVM_GET_API_VERSION); KVM(KVM_CREATE_VM); KVM(KVM_CHECK_EXTENSION); KVM(KVM_GET_VCPU_MMAP_SIZE);
    KVM(KVM_GET_SUPPORTED_CPUID);
    KVM(KVM_CREATE_VCPU); KVM(KVM_SET_USER_MEMORY_REGION); KVM(KVM_SET_TSS_ADDR); KVM(KVM_SET_IDENTITY_MAP_ADDR);
    KVM(KVM_CREATE_IRQCHIP); KVM(KVM_IRQ_LINE); KVM(KVM_IRQFD); KVM(KVM_CREATE_PIT2); KVM(KVM_IOEVENTFD);
    CONST_AS(KvmApi, KVM_RUN_IOCTL, KVM_RUN);
    KVM(KVM_GET_REGS); KVM(KVM_SET_REGS); KVM(KVM_GET_SREGS); KVM(KVM_SET_SREGS); KVM(KVM_SET_MSRS);
    KVM(KVM_SET_SIGNAL_MASK); KVM(KVM_GET_FPU); KVM(KVM_SET_FPU); KVM(KVM_SET_CPUID2); KVM(KVM_GET_MP_STATE); KVM(KVM_GET_LAPIC); KVM(KVM_SET_LAPIC); KVM(KVM_SET_GSI_ROUTING);

    KVM(KVM_CAP_IRQCHIP); KVM(KVM_CAP_HLT); KVM(KVM_CAP_USER_MEMORY); KVM(KVM_CAP_SET_TSS_ADDR);
    KVM(KVM_CAP_EXT_CPUID); KVM(KVM_CAP_NR_VCPUS); KVM(KVM_CAP_NR_MEMSLOTS); KVM(KVM_CAP_MP_STATE);
    KVM(KVM_CAP_IRQ_ROUTING); KVM(KVM_CAP_IRQ_INJECT_STATUS); KVM(KVM_CAP_IRQFD); KVM(KVM_CAP_PIT2);
    KVM(KVM_CAP_PIT_STATE2); KVM(KVM_CAP_IOEVENTFD); KVM(KVM_CAP_SET_IDENTITY_MAP_ADDR);
    KVM(KVM_CAP_MAX_VCPUS); KVM(KVM_CAP_SIGNAL_MSI); KVM(KVM_CAP_SPLIT_IRQCHIP);
    KVM(KVM_CAP_MAX_VCPU_ID); KVM(KVM_CAP_IMMEDIATE_EXIT);

    KVM(KVM_EXIT_UNKNOWN); KVM(KVM_EXIT_EXCEPTION); KVM(KVM_EXIT_IO); KVM(KVM_EXIT_HYPERCALL);
    KVM(KVM_EXIT_DEBUG); KVM(KVM_EXIT_HLT); KVM(KVM_EXIT_MMIO); KVM(KVM_EXIT_IRQ_WINDOW_OPEN);
    KVM(KVM_EXIT_SHUTDOWN); KVM(KVM_EXIT_FAIL_ENTRY); KVM(KVM_EXIT_INTR); KVM(KVM_EXIT_SET_TPR);
    KVM(KVM_EXIT_TPR_ACCESS); KVM(KVM_EXIT_NMI); KVM(KVM_EXIT_INTERNAL_ERROR);
    KVM(KVM_EXIT_SYSTEM_EVENT); KVM(KVM_EXIT_IOAPIC_EOI);
    KVM(KVM_EXIT_IO_IN); KVM(KVM_EXIT_IO_OUT);

    KVM(KVM_INTERNAL_ERROR_EMULATION); KVM(KVM_INTERNAL_ERROR_SIMUL_EX); KVM(KVM_INTERNAL_ERROR_DELIVERY_EV);
    KVM(KVM_SYSTEM_EVENT_SHUTDOWN); KVM(KVM_SYSTEM_EVENT_RESET); KVM(KVM_SYSTEM_EVENT_CRASH);
    KVM(KVM_PIT_SPEAKER_DUMMY);
    KVM(KVM_IRQ_ROUTING_IRQCHIP); KVM(KVM_IRQCHIP_PIC_MASTER); KVM(KVM_IRQCHIP_PIC_SLAVE); KVM(KVM_IRQCHIP_IOAPIC);
    KVM(KVM_MP_STATE_RUNNABLE); KVM(KVM_MP_STATE_UNINITIALIZED); KVM(KVM_MP_STATE_INIT_RECEIVED);
    KVM(KVM_MP_STATE_HALTED); KVM(KVM_MP_STATE_SIPI_RECEIVED);
}

static void libc_constants(void) {
    LIBC(O_RDONLY); LIBC(O_WRONLY); LIBC(O_RDWR); LIBC(O_CLOEXEC); LIBC(O_NONBLOCK);
    LIBC(PROT_READ); LIBC(PROT_WRITE);
    LIBC(MAP_SHARED); LIBC(MAP_PRIVATE); LIBC(MAP_ANONYMOUS); LIBC(MAP_NORESERVE);
    LIBC(MADV_HUGEPAGE); LIBC(MADV_DONTDUMP);
    LIBC(EFD_CLOEXEC); LIBC(EFD_NONBLOCK);
    LIBC(POLLIN); LIBC(POLLOUT); LIBC(POLLERR); LIBC(POLLHUP); LIBC(POLLNVAL);
    LIBC(AT_FDCWD); LIBC(TCGETS);
    /* system call numbers: LibC makes every call through syscall(2) */
    CONST_AS(LibC, SYS_READ, SYS_read); CONST_AS(LibC, SYS_WRITE, SYS_write); CONST_AS(LibC, SYS_CLOSE, SYS_close);
    CONST_AS(LibC, SYS_POLL, SYS_poll); CONST_AS(LibC, SYS_MMAP, SYS_mmap); CONST_AS(LibC, SYS_MUNMAP, SYS_munmap);
    CONST_AS(LibC, SYS_RT_SIGACTION, SYS_rt_sigaction); CONST_AS(LibC, SYS_RT_SIGPROCMASK, SYS_rt_sigprocmask);
    CONST_AS(LibC, SYS_IOCTL, SYS_ioctl); CONST_AS(LibC, SYS_MADVISE, SYS_madvise); CONST_AS(LibC, SYS_GETPID, SYS_getpid);
    CONST_AS(LibC, SYS_SOCKET, SYS_socket); CONST_AS(LibC, SYS_CONNECT, SYS_connect); CONST_AS(LibC, SYS_SENDMSG, SYS_sendmsg);
    CONST_AS(LibC, SYS_RECVMSG, SYS_recvmsg); CONST_AS(LibC, SYS_BIND, SYS_bind); CONST_AS(LibC, SYS_LISTEN, SYS_listen);
    CONST_AS(LibC, SYS_SENDTO, SYS_sendto); CONST_AS(LibC, SYS_RECVFROM, SYS_recvfrom); CONST_AS(LibC, SYS_SHUTDOWN, SYS_shutdown);
    CONST_AS(LibC, SYS_SOCKETPAIR, SYS_socketpair); CONST_AS(LibC, SYS_FCNTL, SYS_fcntl); CONST_AS(LibC, SYS_FCHMOD, SYS_fchmod);
    CONST_AS(LibC, SYS_FTRUNCATE, SYS_ftruncate); CONST_AS(LibC, SYS_RT_SIGTIMEDWAIT, SYS_rt_sigtimedwait);
    CONST_AS(LibC, SYS_GETTID, SYS_gettid); CONST_AS(LibC, SYS_TGKILL, SYS_tgkill); CONST_AS(LibC, SYS_OPENAT, SYS_openat);
    CONST_AS(LibC, SYS_ACCEPT4, SYS_accept4); CONST_AS(LibC, SYS_EVENTFD2, SYS_eventfd2);
    CONST_AS(LibC, SYS_PREADV, SYS_preadv); CONST_AS(LibC, SYS_PWRITEV, SYS_pwritev);
    CONST_AS(LibC, SYS_MEMFD_CREATE, SYS_memfd_create);

    CONST_AS(Signals, KICK_SIGNAL, SIGURG);
    CONST_AS(Signals, SIGINT, SIGINT);
    CONST_AS(Signals, SIGTERM, SIGTERM);
    CONST_AS(Signals, SIG_BLOCK, SIG_BLOCK);
    CONST_AS(Signals, SIG_UNBLOCK, SIG_UNBLOCK);
    CONST_AS(Signals, SIG_SETMASK, SIG_SETMASK);
    CONST_AS(Signals, SIGSET_BYTES, sizeof(sigset_t));
    /* the kernel's sigset (KVM_SET_SIGNAL_MASK) has one bit per signal 1..SIGRTMAX */
    CONST_AS(Signals, KERNEL_SIGSET_BYTES, SIGRTMAX / 8);

    CONST_AS(Terminal, C_OFLAG, offsetof(struct termios, c_oflag));
    CONST_AS(Terminal, OPOST, OPOST);
    CONST_AS(Terminal, TCSANOW, TCSANOW);

    CONST_AS(Tun, IFNAMSIZ, IFNAMSIZ);
    CONST_AS(Tun, IFF_TAP, IFF_TAP); CONST_AS(Tun, IFF_NO_PI, IFF_NO_PI);
    CONST_AS(Tun, IFF_VNET_HDR, IFF_VNET_HDR); CONST_AS(Tun, IFF_MULTI_QUEUE, IFF_MULTI_QUEUE);
    CONST_AS(Tun, IFREQ_BYTES, sizeof(struct ifreq));
    CONST_AS(Tun, IFR_FLAGS, offsetof(struct ifreq, ifr_flags));
    CONST_AS(Tun, VNET_HDR_BYTES, sizeof(struct virtio_net_hdr_v1));
    CONST_AS(Tun, TUNSETIFF, TUNSETIFF); CONST_AS(Tun, TUNSETOFFLOAD, TUNSETOFFLOAD);
    CONST_AS(Tun, TUNSETVNETHDRSZ, TUNSETVNETHDRSZ);
}

/* ==== vhost branch: UNIX sockets with fd passing, memfd, vhost-user (UnixSocket, Memfd, VhostUserProtocol) ==== */
#include <errno.h>
#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <sys/socket.h>
#include <sys/un.h>

/* stringified here, not via CONST_AS, so the key is the name and not its expansion */
#define USOCK(name) P("UnixSocket." #name, (name))

static void vhost_branch(void) {
    STRUCT(sockaddr_un);
    FIELD(sockaddr_un, sun_family); FIELD(sockaddr_un, sun_path);
    STRUCT(iovec);
    FIELD(iovec, iov_base); FIELD(iovec, iov_len);
    STRUCT(msghdr);
    FIELD(msghdr, msg_name); FIELD(msghdr, msg_namelen); FIELD(msghdr, msg_iov); FIELD(msghdr, msg_iovlen);
    FIELD(msghdr, msg_control); FIELD(msghdr, msg_controllen); FIELD(msghdr, msg_flags);
    STRUCT(cmsghdr);
    FIELD(cmsghdr, cmsg_len); FIELD(cmsghdr, cmsg_level); FIELD(cmsghdr, cmsg_type);

    USOCK(AF_UNIX); USOCK(SOCK_STREAM); USOCK(SOCK_NONBLOCK); USOCK(SOCK_CLOEXEC);
    USOCK(SOL_SOCKET); USOCK(SCM_RIGHTS);
    USOCK(MSG_CTRUNC); USOCK(MSG_DONTWAIT); USOCK(MSG_NOSIGNAL); USOCK(MSG_CMSG_CLOEXEC);
    USOCK(F_GETFL); USOCK(F_SETFL); USOCK(F_DUPFD_CLOEXEC); USOCK(POLLOUT);
    USOCK(EPIPE); USOCK(ENAMETOOLONG); USOCK(ECONNABORTED); USOCK(ECONNRESET); USOCK(ECONNREFUSED);
    CONST_AS(UnixSocket, SUN_PATH_BYTES, sizeof(((struct sockaddr_un *) 0)->sun_path));
    CONST_AS(UnixSocket, CMSG_HEADER_BYTES, CMSG_LEN(0));
    CONST_AS(UnixSocket, CMSG_ALIGN_BYTES, CMSG_SPACE(1) - CMSG_LEN(0));

    CONST_AS(Memfd, MFD_CLOEXEC, MFD_CLOEXEC);

    /* vhost-user messages reuse the kernel vhost structs; its region's 4th member is mmap_offset */
    STRUCT(vhost_vring_state);
    FIELD(vhost_vring_state, index); FIELD(vhost_vring_state, num);
    STRUCT(vhost_vring_addr);
    FIELD(vhost_vring_addr, index); FIELD(vhost_vring_addr, flags); FIELD(vhost_vring_addr, desc_user_addr);
    FIELD(vhost_vring_addr, used_user_addr); FIELD(vhost_vring_addr, avail_user_addr); FIELD(vhost_vring_addr, log_guest_addr);
    STRUCT(vhost_memory_region);
    FIELD(vhost_memory_region, guest_phys_addr); FIELD(vhost_memory_region, memory_size);
    FIELD(vhost_memory_region, userspace_addr); FIELD_AS(vhost_memory_region, "mmap_offset", flags_padding);
    STRUCT(vhost_memory);               /* header only: regions[] is a flexible array */
    FIELD(vhost_memory, nregions); FIELD(vhost_memory, padding);
    CONST_AS(VhostUserProtocol, VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1);
    CONST_AS(VhostUserProtocol, VHOST_F_LOG_ALL, VHOST_F_LOG_ALL);
}
/* ==== end of vhost branch ==== */

/* ==== snap branch: snapshot state (KvmApi's block of the same name) ==== */
static void snap_branch(void) {
    STRUCT(kvm_clock_data);
    FIELD(kvm_clock_data, clock); FIELD(kvm_clock_data, flags); FIELD(kvm_clock_data, pad0);
    FIELD(kvm_clock_data, realtime); FIELD(kvm_clock_data, host_tsc); FIELD(kvm_clock_data, pad);
    STRUCT(kvm_irqchip);
    FIELD(kvm_irqchip, chip_id); FIELD(kvm_irqchip, pad); FIELD(kvm_irqchip, chip);
    STRUCT(kvm_pit_channel_state);
    FIELD(kvm_pit_channel_state, count); FIELD(kvm_pit_channel_state, latched_count);
    FIELD(kvm_pit_channel_state, count_latched); FIELD(kvm_pit_channel_state, status_latched);
    FIELD(kvm_pit_channel_state, status); FIELD(kvm_pit_channel_state, read_state);
    FIELD(kvm_pit_channel_state, write_state); FIELD(kvm_pit_channel_state, write_latch);
    FIELD(kvm_pit_channel_state, rw_mode); FIELD(kvm_pit_channel_state, mode); FIELD(kvm_pit_channel_state, bcd);
    FIELD(kvm_pit_channel_state, gate); FIELD(kvm_pit_channel_state, count_load_time);
    STRUCT(kvm_pit_state2);
    FIELD(kvm_pit_state2, channels); FIELD(kvm_pit_state2, flags); FIELD(kvm_pit_state2, reserved);
    STRUCT(kvm_vcpu_events);
    FIELD(kvm_vcpu_events, exception); FIELD(kvm_vcpu_events, interrupt); FIELD(kvm_vcpu_events, nmi);
    FIELD(kvm_vcpu_events, sipi_vector); FIELD(kvm_vcpu_events, flags); FIELD(kvm_vcpu_events, smi);
    FIELD(kvm_vcpu_events, triple_fault); FIELD(kvm_vcpu_events, reserved);
    FIELD(kvm_vcpu_events, exception_has_payload); FIELD(kvm_vcpu_events, exception_payload);
    STRUCT(kvm_debugregs);
    FIELD(kvm_debugregs, db); FIELD(kvm_debugregs, dr6); FIELD(kvm_debugregs, dr7); FIELD(kvm_debugregs, flags);
    FIELD(kvm_debugregs, reserved);
    STRUCT(kvm_xsave);                  /* region[1024], then a flexible array for XSAVE2 */
    FIELD(kvm_xsave, region);
    STRUCT(kvm_xcr);
    FIELD(kvm_xcr, xcr); FIELD(kvm_xcr, reserved); FIELD(kvm_xcr, value);
    STRUCT(kvm_xcrs);
    FIELD(kvm_xcrs, nr_xcrs); FIELD(kvm_xcrs, flags); FIELD(kvm_xcrs, xcrs); FIELD(kvm_xcrs, padding);
    STRUCT(kvm_msr_list);               /* header only: indices[] is a flexible array */
    FIELD(kvm_msr_list, nmsrs);

    KVM(KVM_GET_MSR_INDEX_LIST); KVM(KVM_GET_IRQCHIP); KVM(KVM_SET_IRQCHIP); KVM(KVM_SET_CLOCK); KVM(KVM_GET_CLOCK);
    KVM(KVM_GET_PIT2); KVM(KVM_SET_PIT2); KVM(KVM_GET_MSRS); KVM(KVM_GET_CPUID2); KVM(KVM_SET_MP_STATE);
    KVM(KVM_GET_VCPU_EVENTS); KVM(KVM_SET_VCPU_EVENTS); KVM(KVM_GET_DEBUGREGS); KVM(KVM_SET_DEBUGREGS);
    KVM(KVM_GET_XSAVE); KVM(KVM_SET_XSAVE); KVM(KVM_GET_XCRS); KVM(KVM_SET_XCRS);
    KVM(KVM_CAP_ADJUST_CLOCK); KVM(KVM_CAP_VCPU_EVENTS); KVM(KVM_CAP_DEBUGREGS); KVM(KVM_CAP_XSAVE); KVM(KVM_CAP_XCRS);
    KVM(KVM_VCPUEVENT_VALID_NMI_PENDING); KVM(KVM_VCPUEVENT_VALID_SIPI_VECTOR);
    KVM(KVM_NR_IRQCHIPS); KVM(KVM_MAX_XCRS);
}
/* ==== end of snap branch ==== */

/* ==== gdb branch: guest debugging and KVM_TRANSLATE (KvmApi's block of the same name) ==== */
static void gdb_branch(void) {
    STRUCT(kvm_debug_exit_arch);
    FIELD(kvm_debug_exit_arch, exception); FIELD(kvm_debug_exit_arch, pad); FIELD(kvm_debug_exit_arch, pc);
    FIELD(kvm_debug_exit_arch, dr6); FIELD(kvm_debug_exit_arch, dr7);
    STRUCT(kvm_guest_debug);
    FIELD(kvm_guest_debug, control); FIELD(kvm_guest_debug, pad); FIELD(kvm_guest_debug, arch);
    STRUCT(kvm_guest_debug_arch);
    FIELD(kvm_guest_debug_arch, debugreg);
    STRUCT(kvm_translation);
    FIELD(kvm_translation, linear_address); FIELD(kvm_translation, physical_address); FIELD(kvm_translation, valid);
    FIELD(kvm_translation, writeable); FIELD(kvm_translation, usermode); FIELD(kvm_translation, pad);
    KVM(KVM_TRANSLATE); KVM(KVM_SET_GUEST_DEBUG); KVM(KVM_CAP_SET_GUEST_DEBUG);
    KVM(KVM_GUESTDBG_ENABLE); KVM(KVM_GUESTDBG_SINGLESTEP); KVM(KVM_GUESTDBG_USE_SW_BP); KVM(KVM_GUESTDBG_USE_HW_BP);
    KVM(KVM_GUESTDBG_INJECT_DB); KVM(KVM_GUESTDBG_INJECT_BP);
    CONST_AS(KvmApi, DB_VECTOR, 1); CONST_AS(KvmApi, BP_VECTOR, 3);
}
/* ==== end of gdb branch ==== */

int main(void) {
    structs();
    kvm_constants();
    libc_constants();
    vhost_branch();
    snap_branch();
    gdb_branch();
    return ferror(stdout) ? 1 : 0;
}
