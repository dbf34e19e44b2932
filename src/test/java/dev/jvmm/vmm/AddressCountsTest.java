package dev.jvmm.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class AddressCountsTest {
    /** Entries come most counted first; addresses with equal counts in ascending order. */
    @Test
    void entriesAreOrderedByCountThenAddress() {
        AddressCounts c = new AddressCounts();
        c.add(0x3f8, 5);
        c.add(0x80, 7);
        c.add(0x2f8, 5);
        c.add(0x60, 1);
        c.add(0x3f8, 2); // 7, tied with 0x80
        List<Long> order = c.entries().stream().map(AddressCounts.Entry::address).toList();
        assertEquals(List.of(0x80L, 0x3f8L, 0x2f8L, 0x60L), order);
        assertEquals(7, c.entries().get(1).count());
    }
}
