package dev.jvmm.vmm;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class JsonTest {
    @Test
    void decimalsAreFixedPointRoundedHalfUp() {
        assertEquals("81.945", Json.Decimal.format(81.9449999, 3));
        assertEquals("81.950", Json.Decimal.format(81.9496, 3));
        assertEquals("0.000", Json.Decimal.format(0, 3));
        assertEquals("0.001", Json.Decimal.format(0.0005, 3));
        assertEquals("2.5", Json.Decimal.format(2.45, 1)); // 24.5 units: half up
        assertEquals("3", Json.Decimal.format(2.5, 0));
        assertEquals("-1.25", Json.Decimal.format(-1.249, 2));
        assertEquals("0.00", Json.Decimal.format(-0.001, 2), "no minus sign on a value that rounds to zero");
        assertEquals("123456.789012", Json.Decimal.format(123456.789012, 6));
        assertEquals("1.0E10", Json.Decimal.format(1e10, 3), "beyond fixed point: as Double.toString writes it");
        assertThrows(IllegalArgumentException.class, () -> Json.Decimal.format(1, 10));
    }

    @Test
    void aDecimalIsWrittenAsABareNumberAndReadBackAsOne() throws Exception {
        Map<String, Object> m = Json.fields("ms", Json.Decimal.of(81.9449999, 3), "zero", Json.Decimal.of(0, 3), "n", 7);
        String line = Json.line(m);
        assertEquals("{\"ms\":81.945,\"zero\":0.000,\"n\":7}", line);
        Map<String, Object> back = Json.object(line);
        assertEquals(81.945, ((Number) back.get("ms")).doubleValue());
        String pretty = Json.PRETTY.asString(m).replaceAll("\\s+", "");
        assertEquals("{\"ms\":81.945,\"zero\":0.000,\"n\":7}", pretty, "the pretty writer knows Decimal too");
    }

    @Test
    void aDecimalIsAlwaysAFiniteJsonNumber() {
        for (String ok : List.of("0", "-1", "81.945", "0.000", "1.0E10", "2.5E-7")) {
            assertEquals(ok, new Json.Decimal(ok).text());
        }
        for (String bad : List.of("", "-", "1.", ".5", "NaN", "Infinity", "1e5", "1E", "1,5", "12 ", "{}")) {
            assertThrows(IllegalArgumentException.class, () -> new Json.Decimal(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> Json.Decimal.of(Double.NaN, 3));
        assertThrows(IllegalArgumentException.class, () -> Json.Decimal.of(Double.POSITIVE_INFINITY, 3));
        assertEquals("1.0E12", Json.Decimal.of(1e12, 3).text());
    }
}
