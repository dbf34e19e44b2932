package dev.jvmm.host.vhost;

/**
 * SET_VRING_ADDR's payload: where queue {@code index}'s split-ring parts are, as front-end virtual
 * addresses (this process's mapping of guest RAM, which the back end translates through the memory
 * table), and the guest address for dirty logging (unused unless logging is on).
 */
public record VringAddress(int index, int flags, long descUserAddr, long usedUserAddr, long availUserAddr, long logGuestAddr) { }
