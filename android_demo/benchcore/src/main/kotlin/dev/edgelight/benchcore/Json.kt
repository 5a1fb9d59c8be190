package dev.edgelight.benchcore

/**
 * A small JSON reader and writer, so this module needs nothing but the Kotlin standard library:
 * it compiles with Debian's kotlinc on a plain JVM (for the tests) and inside the Android app alike.
 *
 * Values map to Kotlin as: object -> Map<String, Any?> (insertion order kept), array -> List<Any?>,
 * string -> String, number -> Long when it is integral and fits, else Double, true/false -> Boolean, null -> null.
 */
object Json {

    class ParseError(message: String) : IllegalArgumentException(message)

    fun parse(text: String): Any? {
        val reader = Reader(text)
        reader.skipWhitespace()
        val value = reader.readValue()
        reader.skipWhitespace()
        if (!reader.atEnd()) throw reader.error("unexpected text after the JSON value")
        return value
    }

    /** Pretty-prints with two-space indentation; map keys keep their order, so output is stable. */
    fun write(value: Any?): String {
        val out = StringBuilder()
        writeValue(value, out, 0)
        out.append('\n')
        return out.toString()
    }

    private fun writeValue(value: Any?, out: StringBuilder, depth: Int) {
        when (value) {
            null -> out.append("null")
            is String -> writeString(value, out)
            is Boolean -> out.append(if (value) "true" else "false")
            is Int, is Long, is Short, is Byte -> out.append(value.toString())
            is Double -> writeDouble(value, out)
            is Float -> writeDouble(value.toDouble(), out)
            is Map<*, *> -> writeObject(value, out, depth)
            is List<*> -> writeArray(value, out, depth)
            else -> throw IllegalArgumentException("cannot write ${value.javaClass.name} as JSON")
        }
    }

    private fun writeDouble(value: Double, out: StringBuilder) {
        // JSON has no NaN or infinity; a record must never carry one.
        if (value.isNaN() || value.isInfinite()) throw IllegalArgumentException("cannot write $value as JSON")
        out.append(value.toString())
    }

    private fun writeObject(map: Map<*, *>, out: StringBuilder, depth: Int) {
        if (map.isEmpty()) {
            out.append("{}")
            return
        }
        out.append("{\n")
        var first = true
        for ((key, item) in map) {
            if (!first) out.append(",\n")
            first = false
            indent(out, depth + 1)
            writeString(key as? String ?: throw IllegalArgumentException("JSON object keys must be strings"), out)
            out.append(": ")
            writeValue(item, out, depth + 1)
        }
        out.append('\n')
        indent(out, depth)
        out.append('}')
    }

    private fun writeArray(list: List<*>, out: StringBuilder, depth: Int) {
        // Short arrays of numbers (shapes, mean/std) stay on one line to keep files readable.
        if (list.isEmpty() || list.all { it is Number }) {
            out.append('[')
            list.forEachIndexed { i, item ->
                if (i > 0) out.append(", ")
                writeValue(item, out, depth + 1)
            }
            out.append(']')
            return
        }
        out.append("[\n")
        list.forEachIndexed { i, item ->
            if (i > 0) out.append(",\n")
            indent(out, depth + 1)
            writeValue(item, out, depth + 1)
        }
        out.append('\n')
        indent(out, depth)
        out.append(']')
    }

    private fun indent(out: StringBuilder, depth: Int) {
        for (i in 0 until depth) out.append("  ")
    }

    private fun writeString(value: String, out: StringBuilder) {
        out.append('"')
        for (c in value) {
            when (c) {
                '"' -> out.append("\\\"")
                '\\' -> out.append("\\\\")
                '\n' -> out.append("\\n")
                '\r' -> out.append("\\r")
                '\t' -> out.append("\\t")
                else -> if (c < ' ') out.append(String.format("\\u%04x", c - '\u0000')) else out.append(c)
            }
        }
        out.append('"')
    }

    private class Reader(private val text: String) {
        private var pos = 0

        fun atEnd() = pos >= text.length

        fun error(message: String) = ParseError("invalid JSON at offset $pos: $message")

        fun skipWhitespace() {
            while (pos < text.length && (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t')) pos++
        }

        fun readValue(): Any? {
            if (atEnd()) throw error("unexpected end of input")
            return when (text[pos]) {
                '{' -> readObject()
                '[' -> readArray()
                '"' -> readString()
                't' -> readLiteral("true", true)
                'f' -> readLiteral("false", false)
                'n' -> readLiteral("null", null)
                else -> readNumber()
            }
        }

        private fun readLiteral(word: String, value: Any?): Any? {
            if (!text.startsWith(word, pos)) throw error("expected '$word'")
            pos += word.length
            return value
        }

        private fun expect(c: Char) {
            if (atEnd() || text[pos] != c) throw error("expected '$c'")
            pos++
        }

        private fun readObject(): Map<String, Any?> {
            expect('{')
            val map = LinkedHashMap<String, Any?>()
            skipWhitespace()
            if (!atEnd() && text[pos] == '}') {
                pos++
                return map
            }
            while (true) {
                skipWhitespace()
                if (atEnd() || text[pos] != '"') throw error("expected a string key")
                val key = readString()
                if (map.containsKey(key)) throw error("duplicate key '$key'")
                skipWhitespace()
                expect(':')
                skipWhitespace()
                map[key] = readValue()
                skipWhitespace()
                if (atEnd()) throw error("unterminated object")
                if (text[pos] == ',') {
                    pos++
                    continue
                }
                expect('}')
                return map
            }
        }

        private fun readArray(): List<Any?> {
            expect('[')
            val list = ArrayList<Any?>()
            skipWhitespace()
            if (!atEnd() && text[pos] == ']') {
                pos++
                return list
            }
            while (true) {
                skipWhitespace()
                list.add(readValue())
                skipWhitespace()
                if (atEnd()) throw error("unterminated array")
                if (text[pos] == ',') {
                    pos++
                    continue
                }
                expect(']')
                return list
            }
        }

        private fun readString(): String {
            expect('"')
            val out = StringBuilder()
            while (true) {
                if (atEnd()) throw error("unterminated string")
                val c = text[pos++]
                when {
                    c == '"' -> return out.toString()
                    c == '\\' -> {
                        if (atEnd()) throw error("unterminated escape")
                        when (val e = text[pos++]) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000C')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> {
                                if (pos + 4 > text.length) throw error("short \\u escape")
                                val code = text.substring(pos, pos + 4).toIntOrNull(16) ?: throw error("bad \\u escape")
                                out.append(code.toChar())
                                pos += 4
                            }
                            else -> throw error("bad escape '\\$e'")
                        }
                    }
                    c < ' ' -> throw error("control character in string")
                    else -> out.append(c)
                }
            }
        }

        private fun readNumber(): Number {
            val start = pos
            if (pos < text.length && text[pos] == '-') pos++
            while (pos < text.length && (text[pos] in '0'..'9' || text[pos] == '.' || text[pos] == 'e' || text[pos] == 'E' || text[pos] == '+' || text[pos] == '-')) pos++
            val token = text.substring(start, pos)
            if (token.length == 0 || token == "-") throw error("unexpected character")
            val integral = token.all { it in '0'..'9' || it == '-' }
            if (integral) {
                val asLong = token.toLongOrNull()
                if (asLong != null) return asLong
            }
            return token.toDoubleOrNull() ?: throw error("bad number '$token'")
        }
    }
}
