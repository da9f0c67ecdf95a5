// Placeholder until this API's codec lands; see ../api.ts.
export {};
