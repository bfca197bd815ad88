/**
 * index.d.ts (what users are told) and client.js (what they get) agree: a compile-time
 * check, run by `npx tsc -p tsconfig.json`. Nothing imports this file and it emits no code;
 * being `.ts`, it is neither served nor packaged.
 *
 * Guarantees, for every value export and for the shared type names:
 * - the same exports on both sides (none missing, none undeclared);
 * - for every function, method and constructor, the same parameter list (count, optional
 *   or not, types) and result, compared both ways, so that neither side accepts more or
 *   less than the other; for classes, the same public members (names starting with "_"
 *   are internal to the implementation);
 * - the implementation can stand in for the declared API as a whole (this also checks
 *   every overload of `on`, which the list comparison sees only the last of).
 *
 * `any` in the implementation's JSDoc agrees with everything: where the declaration is
 * more precise than `any`, that precision is the declaration's promise alone.
 */

import type * as Declared from "./index.d.ts";
import type * as Impl from "./client.js";

/**
 * The public members of an instance; `_`-prefixed ones are implementation internals.
 *
 * Wrapped in a conditional on purpose: the result is then a plain object type, not an
 * instance of the alias `Members<…>`. Two instances of one generic alias are related by
 * their type arguments (variance), so `Members<Impl…>` vs `Members<Declared…>` would
 * compare the raw classes, where method parameters are bivariant and an added optional
 * parameter passes; the tuples here would never be looked at.
 */
type Members<T> = T extends unknown
  ? { [K in keyof T as K extends `_${string}` ? never : K]: Shape<T[K]> }
  : never;

/**
 * A value as data that assignability compares strictly: a function becomes its parameter
 * tuple and result (tuples differ in length when a parameter is added, dropped or made
 * optional, which function assignability would let pass); a class becomes its public
 * instance members, and so does an instance a method returns (`subscribe()`).
 */
type Shape<T> =
  T extends (...args: infer A) => infer R ? { params: A; returns: Shape<R> } :
  T extends abstract new (...args: never) => unknown ? { instance: Members<InstanceType<T>> } :
  T extends { prototype: infer P } ? { instance: Members<P> } :
  T extends Declared.Subscription | Impl.Subscription ? { instance: Members<T> } :
  T;

// Written out per side, not as one generic alias applied to each module: TypeScript may
// compare two instances of a generic alias by their type arguments instead of their shape.
type DeclaredApi = { [K in keyof typeof Declared]: Shape<(typeof Declared)[K]> };
type ImplementedApi = { [K in keyof typeof Impl]: Shape<(typeof Impl)[K]> };

/** Compiles only when T is never; the error names what T holds. */
type Empty<T extends never> = T;

// --- the same exports ----------------------------------------------------------------

/** Exported by client.js but not declared in index.d.ts. */
export type Undeclared = Empty<Exclude<keyof typeof Impl, keyof typeof Declared>>;
/** Declared in index.d.ts but not exported by client.js. */
export type Unimplemented = Empty<Exclude<keyof typeof Declared, keyof typeof Impl>>;

// --- the same shapes, both ways ---------------------------------------------------------

declare const implemented: ImplementedApi;
declare const declared: DeclaredApi;
export const implementationIsDeclared: DeclaredApi = implemented;
export const declarationIsImplemented: ImplementedApi = declared;

/** The constructors users call (Subscription's is private in index.d.ts). */
type DeclaredConstructors = {
  BulletinClient: ConstructorParameters<typeof Declared.BulletinClient>;
  BulletinError: ConstructorParameters<typeof Declared.BulletinError>;
};
type ImplementedConstructors = {
  BulletinClient: ConstructorParameters<typeof Impl.BulletinClient>;
  BulletinError: ConstructorParameters<typeof Impl.BulletinError>;
};
declare const implementedConstructors: ImplementedConstructors;
declare const declaredConstructors: DeclaredConstructors;
export const constructorsAreDeclared: DeclaredConstructors = implementedConstructors;
export const constructorsAreImplemented: ImplementedConstructors = declaredConstructors;

/** The type names both sides define (index.d.ts has more: Post, ClosePolicy, …). */
type DeclaredTypes = {
  Transport: Declared.Transport; Status: Declared.Status; StatusDetail: Declared.StatusDetail;
  BulletinEvent: Declared.BulletinEvent; Snapshot: Declared.Snapshot;
  SubscribeOptions: Declared.SubscribeOptions; ClientOptions: Declared.ClientOptions;
};
type ImplementedTypes = {
  Transport: Impl.Transport; Status: Impl.Status; StatusDetail: Impl.StatusDetail;
  BulletinEvent: Impl.BulletinEvent; Snapshot: Impl.Snapshot;
  SubscribeOptions: Impl.SubscribeOptions; ClientOptions: Impl.ClientOptions;
};
declare const implementedTypes: ImplementedTypes;
declare const declaredTypes: DeclaredTypes;
export const typesAreDeclared: DeclaredTypes = implementedTypes;
export const typesAreImplemented: ImplementedTypes = declaredTypes;

// --- the implementation stands in for the declaration as a whole -------------------------

declare const implClient: Impl.BulletinClient;
declare const implSubscription: Impl.Subscription;
declare const implError: Impl.BulletinError;
declare const implClientClass: typeof Impl.BulletinClient;
declare const implErrorClass: typeof Impl.BulletinError;
declare const implDefault: typeof Impl.default;
export const asDeclaredClient: Declared.BulletinClient = implClient;
export const asDeclaredSubscription: Declared.Subscription = implSubscription;
export const asDeclaredError: Declared.BulletinError = implError;
export const asDeclaredClientClass: typeof Declared.BulletinClient = implClientClass;
export const asDeclaredErrorClass: typeof Declared.BulletinError = implErrorClass;
export const asDeclaredDefault: typeof Declared.default = implDefault;
