// The query grammar of `mitosis-nb list --where`, `search_trials(where=)` and the pages'
// filter boxes: parsed into a tree and interpreted, never evaluated as code.
//
//   query      := or
//   or         := and ("or" and)*
//   and        := not ("and" not)*
//   not        := "not" not | "(" or ")" | test
//   test       := column ( OP value | "in" "[" value ("," value)* "]" | "~" STRING
//                        | "is" ["not"] "missing" )
//   column     := NAME ("." NAME)* | `quoted name`
//   value      := NUMBER | STRING | "true" | "false"
//
// A comparison with a missing value is false; `is missing` asks for one.
var MitosisQuery = (function () {
  "use strict";
  var KEYWORDS = { and: 1, or: 1, not: 1, "in": 1, is: 1, missing: 1, "true": 1, "false": 1 };
  var OPERATORS = ["==", "!=", "<=", ">=", "<", ">", "~"];

  function QueryError(message, position) {
    this.message = message;
    this.position = position;
  }

  function tokenize(text) {
    var tokens = [];
    var i = 0;
    while (i < text.length) {
      var c = text[i];
      if (/\s/.test(c)) { i += 1; continue; }
      var start = i;
      if (c === "(" || c === ")" || c === "[" || c === "]" || c === ",") {
        tokens.push({ kind: c, pos: start });
        i += 1;
        continue;
      }
      var op = null;
      for (var k = 0; k < OPERATORS.length; k += 1) {
        if (text.substr(i, OPERATORS[k].length) === OPERATORS[k]) { op = OPERATORS[k]; break; }
      }
      if (op !== null) {
        tokens.push({ kind: "op", value: op, pos: start });
        i += op.length;
        continue;
      }
      if (c === '"' || c === "'") {
        var read = readString(text, i);
        tokens.push({ kind: "string", value: read.value, pos: start });
        i = read.end;
        continue;
      }
      if (c === "`") {
        var close = text.indexOf("`", i + 1);
        if (close < 0) { throw new QueryError("this quoted name has no closing `", start); }
        tokens.push({ kind: "name", value: text.slice(i + 1, close), pos: start });
        i = close + 1;
        continue;
      }
      var number = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(text.slice(i));
      if (number && (c !== "-" && c !== "+" || /[\d.]/.test(text[i + 1] || ""))) {
        tokens.push({ kind: "number", value: Number(number[0]), pos: start });
        i += number[0].length;
        continue;
      }
      var word = /^[A-Za-z_][A-Za-z0-9_.\-]*/.exec(text.slice(i));
      if (word) {
        var w = word[0];
        if (Object.prototype.hasOwnProperty.call(KEYWORDS, w.toLowerCase()) && w.indexOf(".") < 0) {
          tokens.push({ kind: "keyword", value: w.toLowerCase(), pos: start });
        } else {
          tokens.push({ kind: "name", value: w, pos: start });
        }
        i += w.length;
        continue;
      }
      throw new QueryError("unexpected character " + JSON.stringify(c), start);
    }
    tokens.push({ kind: "end", pos: text.length });
    return tokens;
  }

  function readString(text, i) {
    var quote = text[i];
    var out = "";
    var j = i + 1;
    while (j < text.length) {
      var c = text[j];
      if (c === "\\" && j + 1 < text.length) { out += text[j + 1]; j += 2; continue; }
      if (c === quote) { return { value: out, end: j + 1 }; }
      out += c;
      j += 1;
    }
    throw new QueryError("this string has no closing " + quote, i);
  }

  function Parser(tokens) { this.tokens = tokens; this.at = 0; }
  Parser.prototype.peek = function () { return this.tokens[this.at]; };
  Parser.prototype.next = function () { var t = this.tokens[this.at]; this.at += 1; return t; };
  Parser.prototype.isKeyword = function (word) {
    var t = this.peek();
    return t.kind === "keyword" && t.value === word;
  };
  Parser.prototype.expect = function (kind, what) {
    var t = this.next();
    if (t.kind !== kind) { throw new QueryError("expected " + what + " here", t.pos); }
    return t;
  };
  Parser.prototype.or = function () {
    var node = this.and();
    while (this.isKeyword("or")) { this.next(); node = { op: "or", left: node, right: this.and() }; }
    return node;
  };
  Parser.prototype.and = function () {
    var node = this.not();
    while (this.isKeyword("and")) { this.next(); node = { op: "and", left: node, right: this.not() }; }
    return node;
  };
  Parser.prototype.not = function () {
    if (this.isKeyword("not")) { this.next(); return { op: "not", operand: this.not() }; }
    if (this.peek().kind === "(") {
      this.next();
      var inner = this.or();
      this.expect(")", "a closing )");
      return inner;
    }
    return this.test();
  };
  Parser.prototype.value = function () {
    var t = this.next();
    if (t.kind === "number" || t.kind === "string") { return t.value; }
    if (t.kind === "keyword" && (t.value === "true" || t.value === "false")) { return t.value === "true"; }
    throw new QueryError("expected a number, a \"string\", true or false here", t.pos);
  };
  Parser.prototype.test = function () {
    var column = this.expect("name", "a column name (e.g. metrics.rmse)").value;
    var t = this.next();
    if (t.kind === "op" && t.value === "~") {
      var pattern = this.expect("string", "a \"regular expression\"");
      var regex;
      try { regex = new RegExp(pattern.value); } catch (e) {
        throw new QueryError("this regular expression does not compile", pattern.pos);
      }
      return { op: "~", column: column, regex: regex };
    }
    if (t.kind === "op") { return { op: t.value, column: column, value: this.value() }; }
    if (t.kind === "keyword" && t.value === "in") {
      this.expect("[", "a [ opening the list");
      var values = [this.value()];
      while (this.peek().kind === ",") { this.next(); values.push(this.value()); }
      this.expect("]", "a closing ]");
      return { op: "in", column: column, values: values };
    }
    if (t.kind === "keyword" && t.value === "is") {
      var negated = false;
      if (this.isKeyword("not")) { this.next(); negated = true; }
      if (!this.isKeyword("missing")) { throw new QueryError("expected missing here", this.peek().pos); }
      this.next();
      return { op: negated ? "present" : "missing", column: column };
    }
    throw new QueryError("expected a comparison (== != < <= > >= ~ in is) here", t.pos);
  };

  function parse(text) {
    var parser = new Parser(tokenize(text));
    if (parser.peek().kind === "end") { throw new QueryError("the query is empty", 0); }
    var tree = parser.or();
    var rest = parser.peek();
    if (rest.kind !== "end") { throw new QueryError("expected and, or or the end here", rest.pos); }
    return tree;
  }

  function isMissing(value) { return value === undefined || value === null || (typeof value === "number" && isNaN(value)); }

  function equal(a, b) {
    if (typeof a === "number" && typeof b === "number") { return a === b; }
    return typeof a === typeof b && a === b;
  }

  function order(a, b, op) {
    var comparable = (typeof a === "number" && typeof b === "number") ||
      (typeof a === "string" && typeof b === "string");
    if (!comparable) { return false; }
    if (op === "<") { return a < b; }
    if (op === "<=") { return a <= b; }
    if (op === ">") { return a > b; }
    return a >= b;
  }

  // `get(column)` gives a row's value, or undefined when the row has none.
  function evaluate(node, get) {
    switch (node.op) {
      case "or": return evaluate(node.left, get) || evaluate(node.right, get);
      case "and": return evaluate(node.left, get) && evaluate(node.right, get);
      case "not": return !evaluate(node.operand, get);
      case "missing": return isMissing(get(node.column));
      case "present": return !isMissing(get(node.column));
    }
    var value = get(node.column);
    if (isMissing(value)) { return false; }
    switch (node.op) {
      case "==": return equal(value, node.value);
      case "!=": return !equal(value, node.value);
      case "in": return node.values.some(function (v) { return equal(value, v); });
      case "~": return typeof value === "string" && node.regex.test(value);
      default: return order(value, node.value, node.op);
    }
  }

  return { parse: parse, evaluate: evaluate, QueryError: QueryError };
})();
