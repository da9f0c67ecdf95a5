// Placeholder until the request header codec lands.
export {};
