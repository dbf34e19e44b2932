/**
 * The guest side of {@code jvmm run --rootfs DIR KERNEL -- COMMAND}: everything the VMM needs to
 * boot a kernel into a host directory shared by virtio-fs and run one command there.
 *
 * <ul>
 *   <li>{@link dev.jvmm.loader.initramfs.KernelRelease}: the kernel's release string, to find its
 *       modules directory;</li>
 *   <li>{@link dev.jvmm.loader.initramfs.ModuleResolver}: the modules a run needs, with their
 *       dependencies, in load order;</li>
 *   <li>{@link dev.jvmm.loader.initramfs.Job}: what the guest's init is to do, encoded in the job
 *       file format {@code guests/rootfs-job.h} describes;</li>
 *   <li>{@link dev.jvmm.loader.initramfs.InitramfsBuilder}: the cpio archives (a cached base with
 *       the init and the modules, and a small per-run one with the job);</li>
 *   <li>{@link dev.jvmm.loader.initramfs.RootfsInit}: the init itself (bundled from
 *       {@code guests/rootfs-init.c}) and the contract with the VMM: the virtio-serial port names,
 *       the status port, the exit codes.</li>
 * </ul>
 * Nothing here touches KVM: it is all files and bytes.
 */
package dev.jvmm.loader.initramfs;
