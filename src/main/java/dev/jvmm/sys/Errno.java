package dev.jvmm.sys;

/** errno values jvmm reacts to, and the symbolic names used in error messages. */
public final class Errno {
    private Errno() { }

    public static final int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, EBADF = 9,
            EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19,
            EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, ENOSPC = 28, ERANGE = 34, ENOSYS = 38,
            EOPNOTSUPP = 95;

    public static String name(int errno) {
        return switch (errno) {
            case EPERM -> "EPERM"; case ENOENT -> "ENOENT"; case EINTR -> "EINTR"; case EIO -> "EIO";
            case ENXIO -> "ENXIO"; case E2BIG -> "E2BIG"; case EBADF -> "EBADF"; case EAGAIN -> "EAGAIN";
            case ENOMEM -> "ENOMEM"; case EACCES -> "EACCES"; case EFAULT -> "EFAULT"; case EBUSY -> "EBUSY";
            case EEXIST -> "EEXIST"; case ENODEV -> "ENODEV"; case EINVAL -> "EINVAL"; case ENFILE -> "ENFILE";
            case EMFILE -> "EMFILE"; case ENOTTY -> "ENOTTY"; case ENOSPC -> "ENOSPC"; case ERANGE -> "ERANGE";
            case ENOSYS -> "ENOSYS"; case EOPNOTSUPP -> "EOPNOTSUPP";
            default -> "errno " + errno;
        };
    }

    /** "Invalid argument (EINVAL)" */
    public static String describe(int errno) {
        return LibC.strerror(errno) + " (" + name(errno) + ")";
    }
}
