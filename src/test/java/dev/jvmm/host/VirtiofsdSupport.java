package dev.jvmm.host;

import org.junit.jupiter.api.Assumptions;

import static org.junit.jupiter.api.Assertions.fail;

/** Tests that need the real virtiofsd call this first. */
public final class VirtiofsdSupport {
    private VirtiofsdSupport() { }

    /**
     * The virtiofsd this host has, when it can run it (it must run as root). Without one the test is
     * skipped with the reason, except under CI (the environment variable CI is set): there it fails.
     */
    public static Virtiofsd.Binary requireVirtiofsd() {
        Virtiofsd.Binary virtiofsd = null;
        String why = null;
        try {
            virtiofsd = Virtiofsd.find();
        } catch (HelperProcess.HelperException e) {
            why = e.getMessage();
        }
        if (why == null && !"root".equals(System.getProperty("user.name"))) why = "virtiofsd must run as root";
        if (why != null) {
            if (System.getenv("CI") != null) fail(why + " (CI is set, so this is an error, not a skip)");
            Assumptions.abort(why);
        }
        return virtiofsd;
    }
}
